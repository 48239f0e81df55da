"""Export a training checkpoint as shipped weights (model only, fp16, with provenance).

    python -m recon_match.train.export runs/main/checkpoint_best.pt [--out recon_match/weights/recon_dense.pt]
        [--validate-config configs/train_stage2.json]

`--validate-config`: record the validation on that config's fixed set (`train.validate`) instead
of the checkpoint's own, e.g. for weights from a self-training branch with a smaller set.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from ..fileio import atomic_path
from ..model.loading import WEIGHTS_FORMAT, WEIGHTS_PATH, model_from_file
from .checkpoint import load_checkpoint

logger = logging.getLogger(__name__)


def export_weights(checkpoint, out=WEIGHTS_PATH, half=True, validation=None):
    """Write the model weights of `checkpoint` (its averaged weights if it has them) to `out`;
    returns the metadata dict.

    fp16 halves the file; the loader casts back to fp32, so inference runs in fp32.
    `validation`: {"config": path, "summary": {group: metrics}} to record instead of the
    checkpoint's own best validation.
    """
    ckpt = load_checkpoint(checkpoint)
    # the weights a checkpoint stands for (its average, if any); fails here if they do not fit
    weights = model_from_file(ckpt, checkpoint).state_dict()
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in weights.items()}
    s = ckpt["state"]
    meta = {"source": str(checkpoint), "step": s["step"], "pairs_seen": s["pairs_seen"],
            "train_hours": round(s["train_seconds"] / 3600, 3), "best_metric": s.get("best_metric"),
            "ema": "ema" in ckpt,
            "validation": json.loads(s["best_summary"]) if s.get("best_summary") else None,
            "config": ckpt["config"], "continuations": s.get("continuations", [])}
    if validation is not None:
        meta.update(validation=validation["summary"], validation_config=str(validation["config"]))
    obj = {"format": WEIGHTS_FORMAT, "version": 1, "model_conf": ckpt["model_conf"],
           "state_dict": state, "meta": json.dumps(meta)}
    with atomic_path(out) as tmp:
        torch.save(obj, tmp)
    logger.info("wrote %s (%.1f MB) from step %d", out, Path(out).stat().st_size / 2**20, s["step"])
    return meta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    parser.add_argument("--validate-config", help="record the validation on this train config's set")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        validation = None
        if args.validate_config:
            from .config import read_conf
            from .validate import validate
            validation = {"config": args.validate_config,
                          "summary": validate(args.checkpoint, read_conf(args.validate_config))}
        meta = export_weights(args.checkpoint, args.out, half=not args.fp32, validation=validation)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        logger.error("export failed: %s", str(e).splitlines()[0])
        return 2
    print(json.dumps({k: meta[k] for k in ("step", "pairs_seen", "train_hours", "best_metric")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
