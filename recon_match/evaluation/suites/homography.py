"""Homography suite: planar scenes under extreme viewpoint change (EVD's layout).

A dataset is a folder with `1/NAME.png`, `2/NAME.png` and `h/NAME.txt` (3x3, x2 ~ H x1 in
pixels). Each method's matches go through the same MAGSAC++ homography fit; the error of a
pair is the mean distance of the four corners of image 1 mapped by the estimate and by the
ground truth (px in image 2). Metrics: AUC@3/5/10 px (percent), success = error < 10 px
(percent), median matches per pair, seconds per pair.
"""

import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..metrics import pose_auc
from .base import OPENCV_SIFT, OURS, SuiteSkipped
from .matchers import DensePairMatcher, SiftPairMatcher
from .twoview import corner_error, homography

logger = logging.getLogger(__name__)

THRESHOLDS = (3, 5, 10)
SUCCESS_PX = 10.0
COLUMNS = ["auc@3px", "auc@5px", "auc@10px", "success", "matches", "pairs", "s/pair"]
PLOT = (["auc@3px", "auc@5px", "auc@10px", "success"], "percent")

default_conf = {
    "ransac_px": 3.0,           # MAGSAC++ threshold, full-resolution px
    "dense": {"resize": 640},   # matching options (recon_match.matching.default_conf)
    "sift": {"resize": 1600},
}


def datasets(ctx) -> list[Path]:
    """Folders in EVD's layout: data_root/homography/* (none in quick mode)."""
    root = ctx.data("homography")
    if ctx.quick or root is None:
        return []
    return [p for p in sorted(root.iterdir()) if all((p / s).is_dir() for s in ("1", "2", "h"))]


def read_pairs(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(NAME.png, H) for every pair with both images and a homography file."""
    pairs = []
    for h_file in sorted((folder / "h").glob("*.txt")):
        name = h_file.stem + ".png"
        if not ((folder / "1" / name).is_file() and (folder / "2" / name).is_file()):
            logger.warning("%s: images for %s missing; pair skipped", folder, h_file.name)
            continue
        try:
            H = np.loadtxt(h_file, dtype=np.float64).reshape(3, 3)
        except ValueError as e:
            raise ValueError(f"{h_file}: not a 3x3 homography ({e})") from e
        pairs.append((name, H))
    return pairs


def evaluate_method(matcher, folder: Path, pairs, conf, desc) -> dict:
    errors, counts, seconds = [], [], []
    for name, H_gt in tqdm(pairs, desc=desc, unit="pair", leave=False):
        t0 = time.perf_counter()
        m = matcher(f"1/{name}", f"2/{name}")
        H = homography(m["keypoints0"], m["keypoints1"], conf["ransac_px"])
        seconds.append(time.perf_counter() - t0)
        with Image.open(folder / "1" / name) as im:
            w, h = im.size
        errors.append(corner_error(H, H_gt, w, h))
        counts.append(len(m["keypoints0"]))
    aucs = pose_auc(errors, THRESHOLDS)
    out = {f"auc@{t}px": 100 * a for t, a in zip(THRESHOLDS, aucs)}
    out.update({"success": 100 * float(np.mean(np.asarray(errors) < SUCCESS_PX)),
                "matches": float(np.median(counts)), "pairs": len(pairs),
                "s/pair": float(np.mean(seconds)),
                "median_error_px": float(np.median(errors))})
    return out


def run(ctx, conf=None) -> dict:
    conf = {**default_conf, **(conf or {})}
    folders = datasets(ctx)
    if not folders:
        raise SuiteSkipped("quick mode runs on the sample scenes only" if ctx.quick else
                           f"no homography dataset (1/, 2/, h/) under {ctx.data_root}/homography")
    results = {}
    for folder in folders:
        pairs = read_pairs(folder)
        if not pairs:
            logger.warning("%s: no pairs; skipped", folder)
            continue
        with DensePairMatcher(ctx.model, folder, conf["dense"]) as dense, \
                SiftPairMatcher(folder, conf["sift"]) as sift:
            results[folder.name] = {
                OURS: evaluate_method(dense, folder, pairs, conf, f"{folder.name} {OURS}"),
                OPENCV_SIFT: evaluate_method(sift, folder, pairs, conf, f"{folder.name} {OPENCV_SIFT}")}
    return results
