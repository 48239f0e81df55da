"""Training checkpoints: atomic save, safe load (weights_only=True), exact RNG round trip."""

import json
import random

import numpy as np
import torch

from ..fileio import atomic_path
from ..model.loading import CHECKPOINT_FORMAT, read_torch_file

VERSION = 1


def rng_state():
    """torch / numpy / python RNG states as tensors and lists (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, pystate, pygauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": version, "state": list(pystate), "gauss": pygauss}}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_checkpoint(path, *, model, optimizer, scheduler, conf, state, ema=None):
    """Write a checkpoint atomically. `state`: step, next_index, pairs_seen, train_seconds,
    best_metric, continuations (plain Python values); `ema`: the averaged model, if any."""
    ckpt = {"format": CHECKPOINT_FORMAT, "version": VERSION,
            "model": model.state_dict(), "model_conf": model.conf,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "config": json.dumps(conf), "state": dict(state)}
    if ema is not None:
        ckpt["ema"] = ema.state_dict()
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path):
    """Read a training checkpoint (never executes pickled code); RuntimeError naming the
    file when it is corrupt, foreign, or not a training checkpoint."""
    ckpt = read_torch_file(path, "checkpoint")
    missing = {"model", "optimizer", "scheduler", "rng", "config", "state"} - set(ckpt)
    if ckpt.get("format") != CHECKPOINT_FORMAT or missing:
        raise RuntimeError(f"{path} is not a recon-match training checkpoint (missing {sorted(missing)})")
    if ckpt.get("version") != VERSION:
        raise RuntimeError(f"{path}: checkpoint version {ckpt.get('version')} is not supported (want {VERSION})")
    ckpt["config"] = json.loads(ckpt["config"])
    return ckpt
