"""The trainer: an experiment folder that can be stopped and resumed at any step.

DIR/ config.json, checkpoint_last.pt, checkpoint_best.pt (by `best_metric` on the fixed
validation set), log.csv, val.csv, losses.png, val.png.

`ema_decay` > 0 keeps an exponential moving average of the weights: with batches of 4 and a
high learning rate the raw weights are noisy, so validation, the best checkpoint and export
use the average (the raw weights keep training).

Exact resume: model, optimizer, scheduler, RNG states, step and the data position
(`next_index`: items are a pure function of their index, so the loader restarts at the next
unseen index). SIGINT/SIGTERM finish the current step, save `checkpoint_last.pt` and return.
DDP: launched by torchrun with `ddp=True`, each rank reads indices rank, rank + world, ...;
rank 0 validates, logs and saves.
"""

import copy
import json
import logging
import math
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..data import MixtureDataset
from ..fileio import atomic_path
from ..model import DenseMatcher
from . import logs
from .checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from .config import make_conf, read_conf, resume_conf
from .losses import compute_losses
from .metrics import ValidationMeter

logger = logging.getLogger(__name__)


class IndexStream(torch.utils.data.Sampler):
    """Endless dataset indices start*world + rank, (start+1)*world + rank, ... (mod length)."""

    def __init__(self, start, length, rank=0, world=1):
        self.start, self.length, self.rank, self.world = start, length, rank, world

    def __iter__(self):
        k = self.start
        while True:
            yield (k * self.world + self.rank) % self.length
            k += 1


def _worker_init(_):
    # Ctrl-C goes to the whole process group; the main process saves, workers just stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def lr_factor(step, conf):
    """Linear warmup then cosine decay to `min_lr_ratio` at `max_steps`."""
    if step < conf["warmup_steps"]:
        return (step + 1) / conf["warmup_steps"]
    t = min(1.0, (step - conf["warmup_steps"]) / max(1, conf["max_steps"] - conf["warmup_steps"]))
    return conf["min_lr_ratio"] + (1 - conf["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * t))


def native_bf16(device) -> bool:
    """Whether `device` runs bfloat16 natively (CUDA, or CPUs with AMX / AVX512-BF16): on an
    AVX2-only CPU autocast emulates it (seen: 7.2 s per training step against ~1 s in fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


def to_device(batch, device):
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


class Trainer:
    """Trainer(out_dir, conf=None, resume=False, ddp=False). `conf` is a dict or a JSON path;
    on resume it may override everything but `model` (see config.py)."""

    def __init__(self, out_dir, conf=None, resume=False, ddp=False):
        self.out = Path(out_dir)
        if isinstance(conf, (str, Path)):
            conf = read_conf(conf)
        self.ddp = ddp
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
        self.device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
        last = self.out / "checkpoint_last.pt"
        ckpt = None
        if resume:
            if not last.is_file():
                raise FileNotFoundError(f"--resume: no checkpoint at {last}")
            ckpt = load_checkpoint(last)
            self.conf = resume_conf(ckpt["config"], conf)
        else:
            if last.is_file():
                raise ValueError(f"{self.out} already holds a run; pass --resume or choose another --out")
            self.conf = make_conf(conf)
        torch.manual_seed(self.conf["seed"])
        self.net = DenseMatcher(self.conf["model"]).to(self.device)
        self.bf16 = self.conf["backbone_bf16"] and native_bf16(self.device)
        if self.conf["backbone_bf16"] and not self.bf16:
            logger.warning("backbone_bf16: %s has no native bfloat16 (AMX / AVX512-BF16), where "
                           "autocast is ~7x slower; training the backbone in fp32", self.device)
        self.net.backbone_bf16 = self.bf16
        self.model = self.net
        if ddp:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.conf["lr"],
                                           weight_decay=self.conf["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, self.conf))
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if self.conf["ema_decay"] > 0 else None
        self.state = {"step": 0, "next_index": 0, "pairs_seen": 0, "train_seconds": 0.0,
                      "best_metric": None, "continuations": []}
        if ckpt is not None:
            self._restore(ckpt)
        val_key = json.dumps({**self.conf["data"], **self.conf["val_data"], "n": self.conf["val_size"]}, sort_keys=True)
        if self.state.get("val_key") != val_key:
            # a changed mixture changes the validation set: scores are no longer comparable
            self.state.update(val_key=val_key, best_metric=None)
        self.state["continuations"].append({"start_step": self.state["step"], "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                                            "data_weights": dict(self.conf["data"].get("weights", {}))})
        self.stop_requested = False
        self._val = None

    def _restore(self, ckpt):
        self.net.load_state_dict(ckpt["model"])
        if self.ema is not None:  # a run that starts averaging mid-way starts from its weights
            self.ema.load_state_dict(ckpt.get("ema") or ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        # the schedule may have new max_steps/warmup after a config override
        for g, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            g["lr"] = base * lr_factor(ckpt["state"]["step"], self.conf)
        set_rng_state(ckpt["rng"])
        self.state.update(ckpt["state"])
        logger.info("resumed %s at step %d (%d pairs seen)", self.out, self.state["step"], self.state["pairs_seen"])

    def load_weights(self, model):
        """Start from `model`'s weights (e.g. a self-training round's init)."""
        self.net.load_state_dict(model.state_dict())
        if self.ema is not None:
            self.ema.load_state_dict(model.state_dict())

    @torch.no_grad()
    def _update_ema(self):
        d = self.conf["ema_decay"]
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.net.parameters()), 1 - d)
        for e, b in zip(self.ema.buffers(), self.net.buffers()):
            e.copy_(b)

    # ------------------------------------------------------------------ io
    def save(self, name="checkpoint_last.pt"):
        if self.rank == 0:
            save_checkpoint(self.out / name, model=self.net, optimizer=self.optimizer,
                            scheduler=self.scheduler, conf=self.conf, state=self.state, ema=self.ema)

    def _prepare_dir(self):
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / "config.json") as tmp:
            tmp.write_text(json.dumps(self.conf, indent=2))
        logs.truncate_after(self.out / "log.csv", self.state["step"])
        logs.truncate_after(self.out / "val.csv", self.state["step"])

    def _loader(self):
        ds = MixtureDataset(self.conf["data"])
        if self.conf["real"]["weight"] > 0:  # pseudo-labelled video pairs (recon-match selftrain)
            from ..selftrain.dataset import mixed_with_real  # lazy: selftrain imports train.losses
            ds = mixed_with_real(ds, self.conf["real"], self.conf["batch_size"] * self.world, self.conf["seed"])
        stream = IndexStream(self.state["next_index"] // self.world, len(ds), self.rank, self.world)
        nw = self.conf["num_workers"]
        return torch.utils.data.DataLoader(
            ds, batch_size=self.conf["batch_size"], sampler=stream, num_workers=nw,
            worker_init_fn=_worker_init if nw else None, persistent_workers=False,
            prefetch_factor=2 if nw else None, pin_memory=self.device.type == "cuda")

    # ------------------------------------------------------------------ validation
    def validation_set(self):
        """The fixed held-out set: generated once per run, same for every validation."""
        if self._val is None:
            ds = MixtureDataset({**self.conf["data"], **self.conf["val_data"]})
            self._val = [ds[i] for i in range(self.conf["val_size"])]
            self._held_out = ds.conf["held_out_styles"]
        return self._val

    @torch.no_grad()
    def validate(self, net=None):
        """Run `net` (default: the averaged weights if any, else the model) on the validation
        set -> {group: {metric: value}}, in fp32 (as the shipped weights run) whatever the
        training precision."""
        net = net if net is not None else (self.ema if self.ema is not None else self.net)
        net.eval()
        net.backbone_bf16 = False
        items, bs = self.validation_set(), self.conf["batch_size"]
        meter = ValidationMeter(self._held_out)
        for i in range(0, len(items), bs):
            batch = torch.utils.data.default_collate(items[i:i + bs])
            batch = to_device(batch, self.device)
            meter.update(net(batch), batch)
        self.net.train()
        self.net.backbone_bf16 = self.bf16
        return meter.summary()

    def _record_validation(self, summary):
        step = self.state["step"]
        rows = [{"step": step, "group": g, "metric": k, "value": v}
                for g, r in sorted(summary.items()) for k, v in r.items()]
        logs.append_rows(self.out / "val.csv", rows, logs.VAL_COLUMNS)
        group, metric = self.conf["best_metric"].split("/")
        value = summary.get(group, {}).get(metric)
        a = summary["all"]
        logger.info("step %d validation: EPE %.2f px, PCK@1/3/5 %.3f/%.3f/%.3f, prec@0.8 %.3f", step,
                    a["epe"], a["pck1"], a["pck3"], a["pck5"], a["prec@0.8"])
        best = self.state["best_metric"]
        if value is not None and (best is None or value > best):
            self.state["best_metric"] = value
            self.state["best_summary"] = json.dumps(summary)
            self.save("checkpoint_best.pt")
        logs.plot(self.out)

    # ------------------------------------------------------------------ training
    def _step(self, batch):
        out = self.model(batch)
        if "keypoints0" in batch:  # a pseudo-labelled real batch: sparse correspondences only
            from ..selftrain.losses import sparse_losses
            losses = sparse_losses(out, batch, self.conf["loss"])
        else:
            losses = compute_losses(out, batch, self.conf["loss"])
        loss = losses["total"].mean()
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {self.state['step']}; last checkpoint kept")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.conf["grad_clip"])
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self._update_ema()
        return {k: float(v.detach().mean()) for k, v in losses.items()}

    def _on_signal(self, signum, frame):
        logger.warning("signal %d: saving after this step", signum)
        self.stop_requested = True

    def train(self, max_steps=None):
        """Train until `max_steps` (default: the config's) or a signal; returns the final step."""
        max_steps = max_steps if max_steps is not None else self.conf["max_steps"]
        self._prepare_dir()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.net.train()
        bs = self.conf["batch_size"] * self.world
        acc, t_log, t_save = {}, time.time(), time.time()
        bar = tqdm(total=max_steps, initial=self.state["step"], desc="train", disable=self.rank != 0,
                   dynamic_ncols=True)
        try:
            if self.state["step"] >= max_steps:
                return self.state["step"]
            for batch in self._loader():
                t0 = time.time()
                losses = self._step(to_device(batch, self.device))
                s = self.state
                s["step"] += 1
                s["next_index"] += bs
                s["pairs_seen"] += bs
                s["train_seconds"] += time.time() - t0
                for k, v in losses.items():
                    acc[k] = acc.get(k, 0.0) + v
                acc["n"] = acc.get("n", 0) + 1
                bar.update(1)
                if s["step"] % self.conf["log_every"] == 0 or s["step"] >= max_steps:
                    acc, t_log = self._log(acc, t_log, bar), time.time()
                if self.rank == 0 and s["step"] % self.conf["val_every"] == 0:
                    self._record_validation(self.validate())
                    self.save()
                    t_save = time.time()
                if time.time() - t_save > 60 * self.conf["save_every_min"]:
                    self.save()
                    t_save = time.time()
                if s["step"] >= max_steps or self.stop_requested:
                    break
        finally:
            bar.close()
            self.save()
            if self.rank == 0:
                logs.plot(self.out)
            for sig, h in old.items():
                signal.signal(sig, h)
        return self.state["step"]

    def _log(self, acc, t_log, bar):
        n = acc.pop("n")
        rate = n * self.conf["batch_size"] * self.world / max(time.time() - t_log, 1e-6)
        row = {k: acc[k] / n for k in logs.LOSS_COLUMNS[4:]}
        bar.set_postfix(loss=f"{row['total']:.3f}", pairs_s=f"{rate:.1f}")
        if self.rank == 0:
            row.update(step=self.state["step"], pairs_seen=self.state["pairs_seen"],
                       lr=self.optimizer.param_groups[0]["lr"], pairs_per_s=rate)
            logs.append_rows(self.out / "log.csv", [row], logs.LOSS_COLUMNS)
        return {}
