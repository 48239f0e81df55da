"""Image sources for the synthetic mixture: a folder of photographs and procedural images.

Every source returns an H x W x 3 uint8 RGB array drawn deterministically from a numpy
`Generator`, so a training pair depends only on (seed, split, index). Procedural images let
training run with no data folder at all; photographs are split by file (the folder's own
`train/`, `val/`, `test/` sub-folders) so validation never sees a training photograph.
"""

import logging
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..imageio import list_images, read_image

logger = logging.getLogger(__name__)

PROCEDURAL = ("dead_leaves", "noise", "shapes", "strokes", "pattern")


def _rand_color(rng, n=None):
    return rng.integers(0, 256, size=(3,) if n is None else (n, 3)).astype(np.uint8)


def _finish(img, rng, grain=(2.0, 6.0)):
    """Add pixel-level grain so flat regions still carry a little texture, as real sensors do.

    Uniform byte noise through cv2.addWeighted: the float path costs ~5x more per pair."""
    img = img if img.dtype == np.uint8 else np.clip(img, 0, 255).astype(np.uint8)
    noise = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape)
    amp = rng.uniform(*grain) / 74.0  # std of uniform bytes is 74
    return cv2.addWeighted(img, 1.0, noise, amp, -128 * amp)


def noise_field(rng, h, w, channels=1, octaves=5, persistence=0.6):
    """Multi-scale value noise in [0, 1]: H x W x channels float32.

    Built coarse to fine: each octave doubles the resolution of the running sum and adds
    fresh noise, so only the last steps touch full-resolution arrays."""
    base = 2 ** (octaves - 1)
    gh, gw = max(2, -(-h // (base * 4))) + 1, max(2, -(-w // (base * 4))) + 1
    acc = rng.random((gh, gw, channels), dtype=np.float32)
    amp = 1.0
    for _ in range(octaves - 1):
        gh, gw = gh * 2, gw * 2
        acc = cv2.resize(acc, (gw, gh), interpolation=cv2.INTER_CUBIC).reshape(gh, gw, channels)
        amp *= persistence
        acc += amp * rng.random((gh, gw, channels), dtype=np.float32)
    out = cv2.resize(acc, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) * (1 / max(hi - lo, 1e-6))


def dead_leaves(rng, h, w):
    """Occluding disks and rectangles with power-law sizes (scale-invariant image statistics)."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.tile(_rand_color(rng), (w, 1))  # a whole row broadcasts ~50x faster than 3 bytes
    n = int(rng.integers(200, 500))
    rmin, rmax = 3.0, max(h, w) / 3
    # density ~ 1/r^2 via inverse CDF: scale-invariant sizes from rmin to rmax
    u = rng.random(n)
    radii = 1 / (1 / rmin - u * (1 / rmin - 1 / rmax))
    radii = np.sort(radii)[::-1]  # big leaves first so small ones stay visible on top
    cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
    colors = _rand_color(rng, n)
    kinds = rng.random(n)
    # Python scalars up front (tolist): per-element numpy indexing costs as much as the drawing
    for r, x, y, c, kind in zip(radii.tolist(), cx.tolist(), cy.tolist(), colors.tolist(), kinds.tolist()):
        if kind < 0.6:
            cv2.circle(img, (int(x), int(y)), int(r), tuple(c), -1, cv2.LINE_AA)
        else:
            box = ((x, y), (2 * r, r * rng.uniform(0.3, 2)), float(rng.uniform(0, 180)))
            cv2.fillPoly(img, [cv2.boxPoints(box).astype(np.int32)], tuple(c), cv2.LINE_AA)
    return _finish(img, rng)


def multiscale_noise(rng, h, w):
    """Coloured multi-scale noise through a random colour ramp: cloud/terrain-like textures."""
    f = noise_field(rng, h, w, 1, octaves=int(rng.integers(4, 7)), persistence=rng.uniform(0.45, 0.75))
    stops = np.sort(rng.random(4))
    stops[0], stops[-1] = 0.0, 1.0
    ramp = rng.integers(0, 256, size=(4, 3))
    lut = np.stack([np.interp(np.linspace(0, 1, 256), stops, ramp[:, c]) for c in range(3)], -1)
    u8 = (f[..., 0] * 255).astype(np.uint8)
    img = cv2.LUT(cv2.merge([u8, u8, u8]), lut.astype(np.uint8)[None])
    return _finish(img, rng)


def shapes(rng, h, w):
    """Gradient background with random polygons, ellipses and lines (corners, edges, junctions)."""
    gx = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    gy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    c0, c1, c2 = (_rand_color(rng).astype(np.float32) for _ in range(3))
    row, col = c0 + (c1 - c0) * gx, (c2 - c0) * gy * 0.5
    # summed per channel and merged: numpy broadcasting over a trailing axis of 3 is ~3x slower
    img = cv2.merge([row[..., k] + col[..., k] for k in range(3)])
    img = np.clip(img, 0, 255, out=img).astype(np.uint8)
    for _ in range(int(rng.integers(15, 40))):
        c = tuple(int(v) for v in _rand_color(rng))
        kind = rng.random()
        if kind < 0.4:
            k = int(rng.integers(3, 7))
            ctr = rng.uniform([0, 0], [w, h])
            pts = ctr + rng.normal(0, max(h, w) / 10, size=(k, 2))
            cv2.fillPoly(img, [pts.astype(np.int32)], c, cv2.LINE_AA)
        elif kind < 0.75:
            ctr = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            axes = (int(rng.uniform(2, max(3, w / 6))), int(rng.uniform(2, max(3, h / 6))))
            cv2.ellipse(img, ctr, axes, float(rng.uniform(0, 180)), 0, 360, c, -1, cv2.LINE_AA)
        else:
            p0 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.line(img, p0, p1, c, int(rng.integers(1, 6)), cv2.LINE_AA)
    return _finish(img, rng)


FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_PLAIN)
GLYPHS = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZabdefghkmnpqrt0123456789#&@%"))


def strokes(rng, h, w):
    """Text-like marks and pen strokes on a paper/noise background (documents, signs, maps)."""
    base = noise_field(rng, h, w, 1, octaves=3)
    paper = _rand_color(rng).astype(np.float32)
    tone = 0.8 + 0.2 * base[..., 0]
    img = cv2.merge([p * tone for p in paper]).astype(np.uint8)  # per channel: see shapes()
    for _ in range(int(rng.integers(8, 25))):
        text = "".join(rng.choice(GLYPHS, size=int(rng.integers(2, 9))))
        scale = rng.uniform(0.4, 2.5) * max(h, w) / 640
        org = (int(rng.uniform(-20, w)), int(rng.uniform(10, h + 10)))
        cv2.putText(img, text, org, FONTS[int(rng.integers(len(FONTS)))], scale,
                    tuple(int(v) for v in _rand_color(rng)), int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(int(rng.integers(3, 12))):
        pts = np.cumsum(rng.normal(0, max(h, w) / 25, size=(int(rng.integers(3, 12)), 2)), 0)
        pts += rng.uniform([0, 0], [w, h])
        cv2.polylines(img, [pts.astype(np.int32)], False, tuple(int(v) for v in _rand_color(rng)),
                      int(rng.integers(1, 5)), cv2.LINE_AA)
    return _finish(img, rng)


def repeated_pattern(rng, h, w):
    """A tiled motif (bricks, tiles, windows) under smooth shading: locally ambiguous texture."""
    th, tw = int(rng.integers(20, max(21, h // 3))), int(rng.integers(20, max(21, w // 3)))
    tile = shapes(rng, th, tw) if rng.random() < 0.5 else dead_leaves(rng, th, tw)
    reps = (h // th + 2, w // tw + 2, 1)
    img = np.tile(tile, reps)
    if rng.random() < 0.5:  # brick-like offset of every other row of tiles
        for r in range(1, reps[0], 2):
            img[r * th:(r + 1) * th] = np.roll(img[r * th:(r + 1) * th], tw // 2, axis=1)
    shade = 0.6 + 0.6 * noise_field(rng, h, w, 1, octaves=2)
    return _finish(img[:h, :w] * cv2.merge([shade, shade, shade]), rng)  # per channel: see shapes()


GENERATORS = {"dead_leaves": dead_leaves, "noise": multiscale_noise, "shapes": shapes,
              "strokes": strokes, "pattern": repeated_pattern}


def procedural_image(rng, h, w, kind=None):
    """One procedural image (H x W x 3 uint8); `kind` in PROCEDURAL or None for a random one."""
    kind = PROCEDURAL[int(rng.integers(len(PROCEDURAL)))] if kind is None else kind
    return GENERATORS[kind](rng, h, w)


@lru_cache(maxsize=8)
def _photo_names(root: str, split: str) -> tuple:
    folder = Path(root) / split
    return tuple(str(folder / n) for n in list_images(folder))


@lru_cache(maxsize=512)
def _photo(path: str) -> np.ndarray:
    # cached per worker process: decoding dominates otherwise; 500 BSDS photos are ~230 MB
    return read_image(path)


def fit_crop(img, rng, h, w, max_zoom=1.5):
    """Random crop of `img` with aspect h:w resized to h x w (random extra zoom up to max_zoom)."""
    ih, iw = img.shape[:2]
    s = min(ih / h, iw / w) / rng.uniform(1.0, max_zoom)
    ch, cw = max(2, int(round(h * s))), max(2, int(round(w * s)))
    y0, x0 = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if s > 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(crop, (w, h), interpolation=interp))


class ImageSource:
    """Draws H x W x 3 uint8 images: photographs of one split with probability `photo_prob`,
    procedural images otherwise (always, when `photo_root` is None)."""

    def __init__(self, photo_root=None, split="train", photo_prob=0.6):
        self.photos = ()
        self.photo_prob = photo_prob
        if photo_root is not None:
            if not (Path(photo_root) / split).is_dir():
                raise FileNotFoundError(f"{Path(photo_root) / split}: photo split folder does not exist "
                                        f"(expected {photo_root}/{{train,val,test}}/)")
            self.photos = _photo_names(str(photo_root), split)

    def __call__(self, rng, h, w):
        """Returns (image H x W x 3 uint8, name of the source kind)."""
        if self.photos and rng.random() < self.photo_prob:
            path = self.photos[int(rng.integers(len(self.photos)))]
            return fit_crop(_photo(path), rng, h, w), "photo"
        kind = PROCEDURAL[int(rng.integers(len(PROCEDURAL)))]
        return procedural_image(rng, h, w, kind), kind
