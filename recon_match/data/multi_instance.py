"""Generator 5: multi-instance scenes (IMD) — identical objects repeated across the scene.

One object (a textured cut-out) is pasted several times at different places of a background,
so any single instance matches all the others equally well by appearance: the matcher must use
the surrounding context to pick the right one. Half of the pairs are 2D (the composite seen by
two homography views), half 3D (the instances are lifted as foreground layers in front of the
background and seen from a second camera, as in the lifting generator).
"""

import cv2
import numpy as np

from . import homography, lifting

default_conf = {
    "instances": (3, 8),     # number of copies (inclusive range)
    "object_size": (0.12, 0.25),  # object side / min(H, W)
    "lifted_prob": 0.5,      # share of 3D pairs (lifting) vs 2D pairs (homography)
}


def _object(rng, source, size):
    """An object patch (size x size x 3 uint8) and its silhouette mask."""
    tex, _ = source(rng, size, size)
    mask = np.zeros((size, size), np.uint8)
    c = size // 2
    if rng.random() < 0.5:
        cv2.ellipse(mask, (c, c), (int(c * rng.uniform(0.6, 0.95)), int(c * rng.uniform(0.6, 0.95))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
        pts = c + np.stack([np.cos(ang), np.sin(ang)], -1) * c * rng.uniform(0.6, 0.95, (len(ang), 1))
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    return tex, mask.astype(bool)


def _placements(rng, n, size, h, w):
    """Up to `n` top-left corners of non-overlapping size x size boxes (rejection sampling)."""
    boxes = []
    for _ in range(n * 10):
        if len(boxes) == n or w <= size or h <= size:
            break
        x, y = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
        if all(abs(x - bx) >= size or abs(y - by) >= size for bx, by in boxes):
            boxes.append((x, y))
    return boxes


def make_pair(rng, source, h, w, conf=None):
    """A multi-instance pair (same outputs as the homography or lifting generator)."""
    conf = {**default_conf, **(conf or {})}
    lifted = rng.random() < conf["lifted_prob"]
    sh, sw = (h, w) if lifted else (int(round(h * 1.5)), int(round(w * 1.5)))
    image, kind = source(rng, sh, sw)
    size = max(8, int(rng.uniform(*conf["object_size"]) * min(h, w)))
    tex, mask = _object(rng, source, size)
    spots = _placements(rng, int(rng.integers(conf["instances"][0], conf["instances"][1] + 1)), size, sh, sw)
    if not lifted:
        for x, y in spots:
            image[y:y + size, x:x + size][mask] = tex[mask]
        return homography.pair_from_source(rng, image, h, w, homography.default_conf) | {"source": kind}
    lconf = lifting.default_conf
    K, T1 = lifting.sample_camera(rng, lconf, h, w)
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    norm = lifting.normalized_grid(h, w, K)
    corners = [((x - cx) / f, (y - cy) / f) for x in (0, w - 1) for y in (0, h - 1)]
    bg, _ = lifting.background_layers(rng, lconf, corners)
    bg_rho = np.max([lifting.layer_rho(l, *norm) for l in bg], 0)
    layers = list(bg)
    for i, (x, y) in enumerate(spots):
        full = np.zeros((h, w), bool)
        box = (slice(y, y + size), slice(x, x + size))
        full[box] = mask
        layers.append(lifting.object_layer(rng, full, bg_rho, norm, group=i + 1))
        layers[-1]["texture"] = (box, tex)
    return lifting.render_pair(rng, image, layers, K, T1, lconf["newton_steps"]) | {"source": kind}
