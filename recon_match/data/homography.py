"""Generator 1: two perspective views of one planar source image.

Each view is a pinhole camera looking at the source image lying on the plane z = 0 (one
plane unit = one source pixel), with a random tilt (up to `max_tilt` degrees), roll about
the optical axis (relative in-plane rotation up to `max_rotation`), distance (relative scale
change up to `max_scale`) and, optionally, radial distortion (division model). Both images
are rendered from the source by inverse mapping (cv2.remap), and the ground truth is the
exact composition view0 -> plane -> view1, so it holds to floating-point precision.
"""

from functools import lru_cache

import cv2
import numpy as np

from ..coords import rescale

default_conf = {
    "source_scale": 1.5,      # source image side / output side: room for the zoomed-out view
    "max_scale": 4.0,         # max ratio between the two views' scales
    "max_tilt": 55.0,         # degrees between optical axis and plane normal, per view
    "max_rotation": 180.0,    # relative in-plane rotation range, degrees (+/-)
    "focal_range": (0.7, 1.6),  # focal length / image diagonal
    "distortion_prob": 0.3,
    "max_distortion": 0.12,   # |lambda| of the division model at the half-diagonal radius
}


@lru_cache(maxsize=4)
def pixel_planes(h, w):
    """Read-only x and y pixel coordinates (H x W float32 each), built once, not per pair.

    Point maths here works on separate x and y planes: numpy is ~4x slower on the strided
    channels of an H x W x 2 array and ~15x slower broadcasting over a trailing axis of 2."""
    planes = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for p in planes:
        p.flags.writeable = False
    return tuple(planes)


def masked(xy, valid):
    """Copy of `xy` (H x W x C) with 0 where `valid` (H x W bool) is False: cv2.copyTo is
    ~100x faster than np.where with a broadcast mask."""
    return cv2.copyTo(xy, valid.view(np.uint8), np.zeros_like(xy))


def look_at_rotation(forward, roll):
    """Rows = camera x, y, z axes in world coordinates; z along `forward`, rolled by `roll` rad."""
    z = forward / np.linalg.norm(forward)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * x + s * y, -s * x + c * y, z])


def sample_view(rng, conf, h, w, src_center, scale, roll):
    """A camera looking at the source plane; returns a view dict (homography + distortion).

    `scale` = source pixels per image pixel at the principal point (before tilt).
    """
    f = rng.uniform(*conf["focal_range"]) * np.hypot(h, w)
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    tilt = np.deg2rad(rng.uniform(0, conf["max_tilt"]))
    az = rng.uniform(0, 2 * np.pi)
    d = scale * f
    center = d * np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
    R = look_at_rotation(-center, roll)
    t = -R @ center
    # plane point (u, v, 0) with u, v = source pixel - src_center
    H_img_from_plane = K @ np.stack([R[:, 0], R[:, 1], t], 1)
    shift = np.array([[1, 0, -src_center[0]], [0, 1, -src_center[1]], [0, 0, 1]])
    H = H_img_from_plane @ shift / d  # divided by the (positive) depth to keep signs
    lam = 0.0
    if rng.random() < conf["distortion_prob"]:
        lam = rng.uniform(-conf["max_distortion"], conf["max_distortion"])
    return {"H": H, "Hinv": np.linalg.inv(H), "lam": float(lam), "size": (h, w),
            "rnorm": float(np.hypot(h, w) / 2), "scale": float(scale)}


def _apply_h(H, x, y):
    """Homography on float32 point planes x, y; returns (x', y', homogeneous scale). Written
    out per component with Python-float coefficients so everything stays float32 (1e-4 px at
    these sizes) and avoids numpy's slow batched matmul over millions of 2-vectors."""
    (a, b, c), (d, e, f), (g, h, i) = H.tolist()
    wz = g * x + h * y + i
    iw = 1 / wz
    return (a * x + b * y + c) * iw, (d * x + e * y + f) * iw, wz


def _centre(view):
    h, w = view["size"]
    return np.float32((w - 1) / 2), np.float32((h - 1) / 2)


def _undistort(view, x, y):
    """Distorted pixel -> ideal pinhole pixel (division model, explicit in this direction)."""
    if view["lam"] == 0:
        return x, y
    cx, cy = _centre(view)
    dx, dy = (x - cx) * (1 / view["rnorm"]), (y - cy) * (1 / view["rnorm"])
    k = view["rnorm"] / (1 + view["lam"] * (dx ** 2 + dy ** 2))
    return cx + dx * k, cy + dy * k


def _distort(view, x, y):
    """Ideal pixel -> distorted pixel (closed-form root of the division model); ok mask."""
    if view["lam"] == 0:
        return x, y, np.ones(x.shape, bool)
    lam, rnorm = view["lam"], view["rnorm"]
    cx, cy = _centre(view)
    ux, uy = (x - cx) * (1 / rnorm), (y - cy) * (1 / rnorm)
    r2 = ux ** 2 + uy ** 2
    disc = 1 - 4 * lam * r2
    ok = disc >= 0
    # stable form of rd = (1 - sqrt(disc)) / (2 lam ru): rd / ru = 2 / (1 + sqrt(disc))
    ratio = 2 / (1 + np.sqrt(np.maximum(disc, 0)))
    ok &= lam * r2 * ratio ** 2 < 1  # the monotonic branch of the division model
    return cx + ux * ratio * rnorm, cy + uy * ratio * rnorm, ok


def view_to_source(view, x, y):
    """Pixels (x, y planes) of the view -> source pixels (planes), and a mask of rays that
    hit the plane."""
    sx, sy, wz = _apply_h(view["Hinv"], *_undistort(view, x, y))
    # the plane point is in front of the camera iff the forward homography's homogeneous
    # scale there, 1 / wz (H is normalised by the positive target depth), is positive
    return sx, sy, wz > 1e-12


def source_to_view(view, sx, sy):
    """Source pixels (planes) -> view pixels (planes), and a mask: in front of the camera and
    inside."""
    x, y, wz = _apply_h(view["H"], sx, sy)
    x, y, ok = _distort(view, x, y)
    h, w = view["size"]
    ok &= wz > 1e-12
    ok &= (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    return x, y, ok


def render_view(pyramid, view, sx, sy):
    """Render a view from the source pyramid by inverse mapping; (sx, sy) = H x W source
    pixels of the view's pixels. The pyramid level follows the view's scale (anti-aliasing)."""
    level = int(np.clip(np.floor(np.log2(max(view["scale"], 1e-6))), 0, len(pyramid) - 1))
    if level > 0:
        sx, sy = rescale(sx, 1.0 / 2 ** level), rescale(sy, 1.0 / 2 ** level)
    return cv2.remap(pyramid[level], sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def build_pyramid(img, levels=3):
    pyr = [img]
    for _ in range(levels - 1):
        if min(pyr[-1].shape[:2]) < 16:
            break
        pyr.append(cv2.pyrDown(pyr[-1]))
    return pyr


def dense_warp(src_a, ok_a, view_b):
    """GT from view a (its pixels' source points `src_a` = (x, y) planes, mask `ok_a`) to view b:
    (H x W x 2 float32 pixel coords in b, H x W bool valid).

    The source plane extends beyond the source image (rendered with reflected borders, the
    same plane texture in both views), so only visibility in both cameras limits validity.
    """
    x, y, ok_b = source_to_view(view_b, *src_a)
    valid = ok_a & ok_b
    return masked(np.stack([x, y], -1), valid), valid


def sample_views(rng, conf, h, w, src_h, src_w):
    """Two views of a src_h x src_w source with a relative scale in [1/max_scale, max_scale]."""
    # |log ratio| ~ ln(max_scale) * u^1.5: every ratio up to max_scale occurs, moderate ones
    # more often (a 4x zoom leaves only 1/16 of the zoomed-out view covisible)
    log_ratio = np.log(conf["max_scale"]) * rng.random() ** 1.5 * rng.choice([-1.0, 1.0])
    # the zoomed-out view sees most of the source; the other zooms in by the ratio
    s_out = rng.uniform(0.7, 1.0) * min(src_h / h, src_w / w)
    s_in = s_out / np.exp(abs(log_ratio))
    scales = (s_out, s_in) if log_ratio >= 0 else (s_in, s_out)
    roll0 = rng.uniform(-np.pi, np.pi) * 0.1
    rel = np.deg2rad(rng.uniform(-conf["max_rotation"], conf["max_rotation"]))
    rolls = (roll0, roll0 + rel)
    c = np.array([src_w - 1, src_h - 1]) / 2
    # the zoomed-in view looks at a random point the zoomed-out one also sees
    jitter = rng.uniform(-0.25, 0.25, size=2) * np.array([w, h]) * min(scales)
    centers = (c + jitter, c + jitter + rng.uniform(-0.1, 0.1, size=2) * np.array([w, h]) * min(scales))
    return [sample_view(rng, conf, h, w, centers[i], scales[i], rolls[i]) for i in range(2)]


def make_pair(rng, source, h, w, conf=None):
    """A homography pair from `source` (callable (rng, h, w) -> (uint8 image, kind)).

    Returns a dict of numpy arrays: image0/image1 H x W x 3 uint8, warp0/warp1 H x W x 2
    float32, valid0/valid1 H x W bool, plus `source` (the source kind).
    """
    conf = {**default_conf, **(conf or {})}
    sh, sw = int(round(h * conf["source_scale"])), int(round(w * conf["source_scale"]))
    img, kind = source(rng, sh, sw)
    return pair_from_source(rng, img, h, w, conf) | {"source": kind}


def pair_from_source(rng, img, h, w, conf):
    """Two views of the given source image with exact dense correspondences both ways."""
    views = sample_views(rng, conf, h, w, *img.shape[:2])
    pyr = build_pyramid(img)
    (*src0, ok0), (*src1, ok1) = (view_to_source(v, *pixel_planes(h, w)) for v in views)
    out = {"image0": render_view(pyr, views[0], *src0), "image1": render_view(pyr, views[1], *src1)}
    out["warp0"], out["valid0"] = dense_warp(src0, ok0, views[1])
    out["warp1"], out["valid1"] = dense_warp(src1, ok1, views[0])
    return out
