"""Contact sheet of training pairs: one row per pair, image0 | image1, invalid regions shaded
red, a sample of ground-truth correspondences drawn as matching coloured dots joined by lines."""

import cv2
import numpy as np
from PIL import Image

from ..fileio import atomic_path


def _shade(img, valid):
    out = img.astype(np.float32)
    out[~valid] = out[~valid] * 0.45 + np.array([110, 0, 0], np.float32)  # dim + red
    return out.clip(0, 255).astype(np.uint8)


def _to_hwc(x):
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[0] == 3 and x.shape[-1] != 3:  # torch layout 3 x H x W in [0, 1]
        x = (x.transpose(1, 2, 0) * 255).round().clip(0, 255).astype(np.uint8)
    return x


def draw_pair(pair, rng, num_matches=24):
    """H x 2W x 3 uint8 panel for one pair dict (numpy or torch arrays, contract keys)."""
    im0, im1 = _to_hwc(pair["image0"]), _to_hwc(pair["image1"])
    v0, v1 = np.asarray(pair["valid0"]), np.asarray(pair["valid1"])
    warp0 = np.asarray(pair["warp0"])
    h, w = v0.shape
    panel = np.concatenate([_shade(im0, v0), _shade(im1, v1)], 1)
    ys, xs = np.nonzero(v0)
    if len(xs):
        pick = rng.choice(len(xs), size=min(num_matches, len(xs)), replace=False)
        for k in pick:
            x0, y0 = int(xs[k]), int(ys[k])
            x1, y1 = warp0[y0, x0]
            color = tuple(int(c) for c in rng.integers(60, 256, 3))
            p0, p1 = (x0, y0), (int(round(x1)) + w, int(round(y1)))
            cv2.line(panel, p0, p1, color, 1, cv2.LINE_AA)
            for p in (p0, p1):
                cv2.circle(panel, p, 3, color, -1, cv2.LINE_AA)
                cv2.circle(panel, p, 3, (0, 0, 0), 1, cv2.LINE_AA)
    label = f"{pair.get('generator', '?')} | style {pair.get('style', 'none')} | {pair.get('source', '?')}"
    label += f" | valid {v0.mean():.0%}/{v1.mean():.0%}"
    cv2.putText(panel, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(panel, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def contact_sheet(pairs, path, seed=0, num_matches=24):
    """Write a PNG with one row per pair (list of pair dicts); returns the path."""
    rng = np.random.default_rng(seed)
    rows = [draw_pair(p, rng, num_matches) for p in pairs]
    sep = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    sheet = np.concatenate([r for row in rows for r in (row, sep)][:-1], 0)
    with atomic_path(path) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return path
