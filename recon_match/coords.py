"""The one place for coordinate conventions.

Pixel coordinates in recon-match are (x, y) with the *centre* of the top-left pixel at
(0, 0) (OpenCV / torch `align_corners=False` centre convention). COLMAP puts the pixel
corner at the origin, so a COLMAP keypoint is ours + 0.5. Normalized coordinates map the
image to [-1, 1] on both axes (corners of the border pixels), as `grid_sample` expects
with `align_corners=False`.
"""

import numpy as np
import torch

COLMAP_OFFSET = 0.5


def to_colmap(xy):
    """Pixel-centre coordinates -> COLMAP (corner-origin) coordinates."""
    return xy + COLMAP_OFFSET


def from_colmap(xy):
    """COLMAP (corner-origin) coordinates -> pixel-centre coordinates."""
    return xy - COLMAP_OFFSET


def rescale(xy, scale):
    """Map pixel-centre coordinates through an image resize by `scale` (sx, sy) or scalar.

    A pixel centre k in the source lands at (k + 0.5) * s - 0.5 in the resized image.
    """
    if isinstance(xy, torch.Tensor):
        s = torch.as_tensor(scale, dtype=xy.dtype, device=xy.device)
    else:
        s = np.asarray(scale, dtype=np.float64 if np.asarray(xy).dtype == np.float64 else np.float32)
    return (xy + 0.5) * s - 0.5


def normalize(xy, size):
    """Pixel-centre coordinates -> [-1, 1] for an image of `size` = (W, H)."""
    w, h = size
    s = xy.new_tensor([w, h]) if isinstance(xy, torch.Tensor) else np.array([w, h], np.float32)
    return (xy + 0.5) / s * 2 - 1


def denormalize(xy, size):
    """[-1, 1] -> pixel-centre coordinates for an image of `size` = (W, H)."""
    w, h = size
    s = xy.new_tensor([w, h]) if isinstance(xy, torch.Tensor) else np.array([w, h], np.float32)
    return (xy + 1) / 2 * s - 0.5


def pixel_grid(h, w, device=None, dtype=torch.float32):
    """H x W x 2 tensor of pixel-centre coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys], -1)


def sq_dist(a, b):
    """Squared distance of ... x 2 points: element-wise, unlike `.norm(dim=-1)`, which is
    ~20x slower on CPU on the strided views that grid_sample outputs give."""
    dx, dy = a[..., 0] - b[..., 0], a[..., 1] - b[..., 1]
    return dx * dx + dy * dy
