"""Global descriptors from our own network, for retrieval pairs."""

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..preprocess import load_for_network

logger = logging.getLogger(__name__)


@torch.no_grad()
def global_descriptors(model, image_dir, names, resize: int = 320, device=None) -> np.ndarray:
    """N x D float32 descriptors: `model.global_descriptor(model.extract(image))` per image.

    Images are processed one at a time, so memory does not grow with N.
    """
    device = device or next(model.parameters()).device
    out = []
    for n in tqdm(names, desc="global descriptors", unit="img", mininterval=1.0):
        img = load_for_network(Path(image_dir) / n, resize)["image"][None].to(device)
        d = model.global_descriptor(model.extract(img))
        out.append(d.reshape(1, -1).float().cpu().numpy())
    desc = np.concatenate(out, 0)
    if not np.isfinite(desc).all():
        logger.warning("non-finite global descriptors replaced by zeros")
        desc = np.nan_to_num(desc, nan=0.0, posinf=0.0, neginf=0.0)
    return desc
