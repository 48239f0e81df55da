"""Images as the network sees them: resized so the long side is `resize` (downscaling only),
each side a multiple of `dfactor`, and the per-axis scale back to original pixels."""

import cv2
import torch

from .imageio import read_image


def network_size(width: int, height: int, resize: int | None, dfactor: int = 16):
    """(W', H') for the network: long side <= `resize`, each side a multiple of `dfactor`."""
    s = 1.0 if not resize else min(1.0, resize / max(width, height))
    return tuple(max(dfactor, int(round(v * s / dfactor)) * dfactor) for v in (width, height))


def load_for_network(path, resize: int | None, dfactor: int = 16, keep_gray: bool = False):
    """Read and resize one image.

    Returns a dict: `image` 3 x H' x W' float32 tensor in [0, 1]; `size` (W, H) of the
    original; `scale` (sx, sy) = original / resized, for `coords.rescale`; and, when
    `keep_gray`, `gray` the full-resolution H x W uint8 image (for refinement).
    """
    rgb = read_image(path)
    h, w = rgb.shape[:2]
    nw, nh = network_size(w, h, resize, dfactor)
    small = rgb if (nw, nh) == (w, h) else cv2.resize(
        rgb, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
    out = {
        "image": torch.tensor(small).permute(2, 0, 1).float() / 255.0,  # copies: decoded arrays may be read-only
        "size": (w, h),
        "scale": (w / nw, h / nh),
    }
    if keep_gray:
        out["gray"] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return out
