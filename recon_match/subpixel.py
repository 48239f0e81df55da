"""Cheap sub-pixel refinement of matches on the full-resolution images.

The network matches at ~640 px; on a 3072 px photo one network pixel is ~5 image pixels.
A normalized cross-correlation (NCC) template search around each match on the full-
resolution grayscale images, with a parabolic fit of the correlation peak, brings matches
to SIFT-level precision for ~0.1 s per pair (FACTS.md: Herz-Jesu AUC@5 65 -> 95).

One end of a match (the anchor) stays fixed and the template is cut around it; the other
end moves. Matches whose best correlation is below `min_ncc` (texture too weak, or
viewpoint too different for a square window) are reported as failed.
"""

import cv2
import numpy as np


def _parabola(left, centre, right):
    """Sub-sample offset of a peak from three samples, in [-0.5, 0.5]."""
    den = left - 2 * centre + right
    if abs(den) < 1e-9:
        return 0.0
    return float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def refine_matches(anchor_img, moving_img, anchors, moving, window: int = 21,
                   search: float = 8.0, min_ncc: float = 0.8):
    """Refine `moving` (N x 2 pixels in `moving_img`) to best match the patches around
    `anchors` (N x 2 pixels in `anchor_img`); images are H x W gray (uint8 or float).

    window: odd template side (px); search: radius searched around each moving point (px).
    Returns (refined N x 2 float32, ncc N float32, ok N bool); `refined` equals `moving`
    where not ok (NCC below `min_ncc`, flat template, non-finite input, or the peak on
    the border of the search area). OpenCV's matchTemplate per match: measured 4-5x faster
    on CPU than one grouped convolution over all matches.
    """
    a_img = np.asarray(anchor_img, np.float32)  # float patches keep sub-pixel sampling
    m_img = np.asarray(moving_img, np.float32)
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    moving = np.asarray(moving, np.float32).reshape(-1, 2)
    r, s = max(1, int(window) // 2), max(1, int(np.ceil(search)))
    tsize, asize = (2 * r + 1,) * 2, (2 * (r + s) + 1,) * 2
    out = moving.copy()
    ncc = np.zeros(len(moving), np.float32)
    ok = np.zeros(len(moving), bool)
    for i in np.flatnonzero(np.isfinite(anchors).all(1) & np.isfinite(moving).all(1)):
        tmpl = cv2.getRectSubPix(a_img, tsize, (float(anchors[i, 0]), float(anchors[i, 1])))
        if tmpl.std() < 1e-2:  # flat template: correlation is meaningless
            continue
        area = cv2.getRectSubPix(m_img, asize, (float(moving[i, 0]), float(moving[i, 1])))
        res = cv2.matchTemplate(area, tmpl, cv2.TM_CCOEFF_NORMED)
        _, best, _, (u, v) = cv2.minMaxLoc(res)
        ncc[i] = best
        if best < min_ncc or not (0 < u < 2 * s and 0 < v < 2 * s):
            continue
        du = _parabola(res[v, u - 1], best, res[v, u + 1])
        dv = _parabola(res[v - 1, u], best, res[v + 1, u])
        out[i] = moving[i] + (u - s + du, v - s + dv)
        ok[i] = True
    return out, ncc, ok
