"""Self-training rounds (GIM): label the video with the current model -> train on the labels
mixed with the synthetic mixture -> label again with the new model -> ...

OUT/ labels/<clip>.npz  the current round's labels (store.py; relabelled when the model changes)
     rounds/round_<r>.pt the weights that labelled round r (shipped-weights format)
     train/              the trainer's experiment folder (one run across all rounds)
     selftrain.json      config and per-round record: labelling model, frames, labels, seconds

Resumable at any point: the labels are skipped per clip when current, round weights are kept,
and the trainer resumes from train/checkpoint_last.pt; round r ends at step (r + 1) * steps.
"""

import json
import logging
import time
from pathlib import Path

import torch

from ..fileio import atomic_path
from ..model import load_matcher
from ..model.loading import WEIGHTS_FORMAT, model_from_file, read_torch_file
from ..config import merge_conf
from ..train import Trainer
from . import store

logger = logging.getLogger(__name__)

default_conf = {
    "rounds": 2,
    "steps_per_round": 200,
    "seed": 0,
    "clips": None,          # clip names (None = all)
    "max_frames": None,     # first N frames of each clip (None = all)
    "labelling": {},        # store.default_conf overrides: {"label": ..., "propagate": ...}
    "real": {"weight": 0.5},  # trainer `real` block (labels/video filled in), see selftrain.dataset
    # trainer config overrides (recon_match.train.config); fine-tuning: short warmup, lower lr
    "train": {"lr": 2e-4, "warmup_steps": 20, "batch_size": 2, "val_size": 16,
              "data": {"size": [192, 256]}},
}
NESTED = ("labelling", "real", "train")


def save_weights(model, path, meta):
    """Model weights in the shipped-weights format (fp32), atomically."""
    obj = {"format": WEIGHTS_FORMAT, "version": 1, "model_conf": model.conf,
           "state_dict": model.state_dict(), "meta": json.dumps(meta)}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_model(path):
    return model_from_file(read_torch_file(path, "weights"), path).eval()


def initial_model(init, seed):
    """The model that labels round 0: `init` (weights or checkpoint), else the shipped weights,
    else a seeded random network (SIFT then carries the labelling)."""
    torch.manual_seed(seed)
    return load_matcher(init, "cpu") if init is not None else load_matcher(None, "cpu")


class SelfTraining:
    """SelfTraining(video, out, conf, init=None, resume=False).run() -> per-round records."""

    def __init__(self, video, out, conf=None, init=None, resume=False):
        self.video, self.out = Path(video), Path(out)
        conf = dict(conf or {})
        # the nested blocks are checked by their owners (store, PseudoPairDataset, trainer)
        nested = {k: {**default_conf[k], **conf.pop(k, {})} for k in NESTED}
        self.conf = {**merge_conf({k: v for k, v in default_conf.items() if k not in NESTED}, conf, "selftrain"),
                     **nested}
        self.init = init
        self.record_path = self.out / "selftrain.json"
        if self.record_path.is_file() and not resume:
            raise ValueError(f"{self.out} already holds a self-training run; pass --resume or choose another --out")
        if resume and not self.record_path.is_file():
            raise FileNotFoundError(f"--resume: no self-training run in {self.out}")
        self.record = (json.loads(self.record_path.read_text()) if resume
                       else {"conf": self.conf, "init": str(init), "rounds": []})
        store.list_clips(self.video)  # fail early on a wrong folder

    def _save_record(self):
        with atomic_path(self.record_path) as tmp:
            tmp.write_text(json.dumps(self.record, indent=1))

    def train_conf(self):
        real = {**self.conf["real"], "labels": str(self.out / "labels"), "video": str(self.video)}
        steps = self.conf["rounds"] * self.conf["steps_per_round"]
        return {"max_steps": steps, "val_every": self.conf["steps_per_round"], "seed": self.conf["seed"],
                **self.conf["train"], "real": real}

    def round_model(self, r):
        """Weights that label round r, frozen in rounds/round_<r>.pt on first use."""
        path = self.out / "rounds" / f"round_{r}.pt"
        if not path.is_file():
            if r == 0:
                model = initial_model(self.init, self.conf["seed"])
            else:
                last = self.out / "train" / "checkpoint_last.pt"
                model = model_from_file(read_torch_file(last), last)
            save_weights(model, path, {"round": r, "source": str(self.init if r == 0 else last)})
        return load_model(path)

    def trainer(self):
        train_dir = self.out / "train"
        if (train_dir / "checkpoint_last.pt").is_file():
            return Trainer(train_dir, self.train_conf(), resume=True)
        trainer = Trainer(train_dir, self.train_conf())
        start = self.round_model(0)
        if trainer.net.conf != start.conf:
            raise ValueError(f"--init model config {start.conf} differs from the trainer's {trainer.net.conf}")
        trainer.load_weights(start)
        return trainer

    def run(self):
        steps = self.conf["steps_per_round"]
        for r in range(self.conf["rounds"]):
            done = {x["round"] for x in self.record["rounds"] if x.get("trained_to")}
            if r in done:
                continue
            model = self.round_model(r)
            t0 = time.time()
            stats = store.label_videos(self.video, self.out / "labels", model, self.conf["labelling"],
                                       clips=self.conf["clips"], max_frames=self.conf["max_frames"])
            label_s = time.time() - t0
            trainer = self.trainer()
            t1 = time.time()
            step = trainer.train(max_steps=(r + 1) * steps)
            entry = {"round": r, "model": store.model_hash(model), "clips": len(stats),
                     **store.total_stats(stats),
                     "label_seconds": round(label_s, 1), "train_seconds": round(time.time() - t1, 1),
                     "trained_to": step if step >= (r + 1) * steps else None}
            self.record["rounds"] = [x for x in self.record["rounds"] if x["round"] != r] + [entry]
            self._save_record()
            logger.info("round %d: %s", r, entry)
            if trainer.stop_requested:
                logger.warning("stopped during round %d; rerun with --resume", r)
                break
        return self.record["rounds"]

