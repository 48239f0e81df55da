"""Two-view matchers for the pair suites: ours and OpenCV SIFT, same call, same output.

`matcher(name0, name1)` -> dict `keypoints0`, `keypoints1` N x 2 float64 pixel-centre
coordinates in the full-resolution images (names relative to the matcher's image folder).
"""

import logging
from pathlib import Path

import cv2
import numpy as np

from ...coords import rescale
from ...imageio import read_image
from ...matching import Engine, make_conf

logger = logging.getLogger(__name__)


class DensePairMatcher:
    """Our network through the SfM matching engine (`recon_match.matching`): resize to
    `conf['resize']`, match, sample, rescale to full resolution and NCC-refine there, so the
    suites measure exactly what `recon-match sfm` feeds COLMAP. `conf`: matching options."""

    def __init__(self, model, image_dir, conf=None):
        self.conf = make_conf(conf)
        device = next(model.parameters()).device
        self.engine = Engine(model.eval(), self.conf, Path(image_dir), device)

    def __call__(self, name0: str, name1: str) -> dict:
        images = {n: self.engine.load(n) for n in (name0, name1)}
        res = self.engine.match_batch([(name0, name1)], images)[0]
        return {k: np.asarray(res[k], np.float64) for k in ("keypoints0", "keypoints1")}

    def close(self):
        self.engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sift_detect(sift, gray: np.ndarray, resize: int | None):
    """(xy N x 2 float64 full-resolution pixel centres, descriptors N x 128 or None) of an
    H x W uint8 image, detected after downscaling the long side to `resize`."""
    h, w = gray.shape[:2]
    s = min(1.0, resize / max(w, h)) if resize else 1.0
    if s < 1:
        gray = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    kps, desc = sift.detectAndCompute(gray, None)
    xy = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
    # OpenCV keypoints use the pixel-centre convention, as we do
    return rescale(xy, (w / gray.shape[1], h / gray.shape[0])), desc


def ratio_match(xy0, d0, xy1, d1, ratio: float) -> dict:
    """Nearest-neighbour descriptor matches passing Lowe's ratio test."""
    if d0 is None or d1 is None or len(d0) < 2 or len(d1) < 2:
        return {"keypoints0": np.zeros((0, 2)), "keypoints1": np.zeros((0, 2))}
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d0, d1, k=2)
    good = [(m.queryIdx, m.trainIdx) for m, n in (p for p in knn if len(p) == 2)
            if m.distance < ratio * n.distance]
    i0, i1 = (np.array(v, int) for v in zip(*good)) if good else (np.zeros(0, int),) * 2
    return {"keypoints0": xy0[i0], "keypoints1": xy1[i1]}


class SiftPairMatcher:
    """OpenCV SIFT on images downscaled to `resize` (long side; never upscaled) + Lowe's
    ratio test: the classic baseline for homographies and relative poses."""

    default_conf = {"resize": 1600, "max_features": 8192, "ratio": 0.8}
    CACHE_SIZE = 16  # images whose features are kept: pairs revisit recent images

    def __init__(self, image_dir, conf=None):
        conf = dict(conf or {})
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"unknown SIFT options {sorted(unknown)}; known: {sorted(self.default_conf)}")
        self.conf = {**self.default_conf, **conf}
        self.image_dir = Path(image_dir)
        self.sift = cv2.SIFT_create(nfeatures=self.conf["max_features"])
        self.cache = {}  # name -> (xy, descriptors), oldest first

    def features(self, name: str):
        if name not in self.cache:
            if len(self.cache) >= self.CACHE_SIZE:
                self.cache.pop(next(iter(self.cache)))
            gray = read_image(self.image_dir / name, grayscale=True)
            self.cache[name] = sift_detect(self.sift, gray, self.conf["resize"])
        return self.cache[name]

    def __call__(self, name0: str, name1: str) -> dict:
        return ratio_match(*self.features(name0), *self.features(name1), self.conf["ratio"])

    def close(self):
        self.cache = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
