"""Writing pictures: one atomic PNG writer shared by every picture-making module."""

from pathlib import Path

import numpy as np
from PIL import Image

from recon_match.fileio import atomic_path


def save_png(path, image: np.ndarray) -> Path:
    """Write `image` (H x W x 3 or H x W uint8) to `path` as PNG, atomically; return the path."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"{path}: expected an H x W (x 3) uint8 image, got "
                         f"{image.dtype} {image.shape}")
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path
