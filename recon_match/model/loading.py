"""Load the matcher from shipped weights or a training checkpoint (safely: weights_only)."""

import json
import logging
import pickle
from pathlib import Path

import torch

from .matcher import DenseMatcher

logger = logging.getLogger(__name__)

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "weights" / "recon_dense.pt"
WEIGHTS_FORMAT = "recon-match-weights"
CHECKPOINT_FORMAT = "recon-match-checkpoint"


def read_torch_file(path, what="checkpoint"):
    """torch.load with weights_only=True; every failure becomes a RuntimeError naming the file.

    weights_only refuses pickled code, so a crafted file cannot run anything on load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(f"cannot read {what} {path}: not a valid recon-match file ({first})") from e
    if not isinstance(obj, dict) or obj.get("format") not in (WEIGHTS_FORMAT, CHECKPOINT_FORMAT):
        raise RuntimeError(f"{what} {path} is not a recon-match weights or checkpoint file")
    return obj


def model_from_file(obj, path="<memory>"):
    """A DenseMatcher built from a weights/checkpoint dict (as read by read_torch_file); a
    checkpoint's averaged weights (`ema`) when it has them."""
    state = obj["state_dict"] if obj["format"] == WEIGHTS_FORMAT else obj.get("ema") or obj["model"]
    model = DenseMatcher(obj["model_conf"])
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise RuntimeError(f"weights in {path} do not fit this DenseMatcher version: {e}") from e
    return model


def load_matcher(weights=None, device=None):
    """DenseMatcher in eval mode with `weights` (a .pt path: shipped weights or a training
    checkpoint); `None` = the shipped recon_dense.pt, or random weights (with a warning) if
    it is absent. `device` defaults to CUDA when available."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if weights is None and not WEIGHTS_PATH.is_file():
        logger.warning("shipped weights %s not found: the matcher is untrained", WEIGHTS_PATH)
        return DenseMatcher().eval().to(device)
    path = Path(weights or WEIGHTS_PATH)
    model = model_from_file(read_torch_file(path, "weights"), path)
    return model.eval().to(device)


def weights_info(path=None) -> dict | None:
    """Provenance of a shipped weights file (step, pairs seen, CPU-hours, validation
    summary), or None when there is no such file."""
    path = Path(path or WEIGHTS_PATH)
    if not path.is_file():
        return None
    return json.loads(read_torch_file(path, "weights").get("meta", "{}"))
