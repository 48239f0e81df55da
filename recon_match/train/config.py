"""Trainer configuration: defaults, merging (unknown keys rejected), JSON file reading.

On resume the saved `config.json` is the base; a new config file may override anything
except `model` (the weights must keep their shapes). That is how the mixture weights and
data options are changed mid-session as new generators appear: items are a pure function of
(seed, split, index), so the changed mixture applies from the current data position on.
"""

import json
from pathlib import Path

from ..config import merge_conf

_NATURAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "natural"
# a checkout without ../shared (e.g. CI) trains on procedural images unless told otherwise
NATURAL = str(_NATURAL) if (_NATURAL / "train").is_dir() else None

default_conf = {
    "data": {"size": [256, 256], "weights": {"homography": 1.0}, "photo_root": NATURAL,
             "length": 100_000_000, "seed": 0},
    # applied on top of `data` for the fixed validation set: other split (other photos),
    # other seed, the held-out styles included, and no grey renderings whatever the training
    # recipe (stage 6's grey 0.2 leaked into it and changed the set: PCK@3 0.528 -> 0.493)
    "val_data": {"split": "val", "seed": 12345, "include_held_out": True, "style_prob": 0.5,
                 "gray_prob": 0.0},
    "val_size": 48,
    "val_every": 500,
    "model": {},
    "loss": {},
    # pseudo-labelled real pairs (recon_match.selftrain): `weight` = share of batches drawn
    # from them; the other keys go to selftrain.dataset.PseudoPairDataset (labels, video, ...)
    "real": {"weight": 0.0},
    "batch_size": 6,
    "lr": 1e-3,
    "weight_decay": 0.01,
    "warmup_steps": 300,
    "max_steps": 300_000,  # cosine decay horizon
    "min_lr_ratio": 0.05,
    "grad_clip": 1.0,
    "ema_decay": 0.0,  # > 0: validate/export an exponential moving average of the weights
    "backbone_bf16": False,  # bfloat16 autocast of the CNN backbone where the device has native bf16
    "num_workers": 1,
    "seed": 0,
    "log_every": 20,
    "save_every_min": 10.0,
    "best_metric": "all/pck3",
}

FIXED_ON_RESUME = ("model",)
NESTED = ("data", "val_data", "model", "loss", "real")


def make_conf(conf=None):
    """Defaults merged with `conf` (nested dicts merged key by key, unknown keys rejected).
    `data`/`val_data` are passed through to MixtureDataset, which checks their keys."""
    conf = dict(conf or {})
    unknown = sorted(set(conf) - set(default_conf))
    if unknown:
        raise ValueError(f"unknown train config key {unknown[0]!r}; known keys: {sorted(default_conf)}")
    out = merge_conf({k: v for k, v in default_conf.items() if k not in NESTED},
                     {k: v for k, v in conf.items() if k not in NESTED}, "train config")
    for k in NESTED:  # checked by their owners (MixtureDataset, DenseMatcher, compute_losses)
        out[k] = {**default_conf[k], **conf.get(k, {})}
    return out


def read_conf(path):
    """JSON config file -> dict (ValueError naming the file when it is not valid JSON)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    try:
        conf = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(conf, dict):
        raise ValueError(f"{path}: the config must be a JSON object")
    return conf


def resume_conf(saved, new=None):
    """Config for a resumed run: `saved` with `new`'s overrides; `model` may not change."""
    if not new:
        return make_conf(saved)
    for k in FIXED_ON_RESUME:
        if k in new and make_conf({k: new[k]})[k] != make_conf(saved)[k]:
            raise ValueError(f"cannot change {k!r} when resuming (the checkpoint's weights depend on it)")
    merged = dict(saved)
    for k, v in new.items():
        merged[k] = {**saved.get(k, {}), **v} if k in ("data", "val_data") and isinstance(v, dict) else v
    return make_conf(merged)
