"""Relative pose suite: image pairs drawn from scenes with ground-truth poses.

Pairs are neighbours in name order (1 to 3 apart: captures are sequential in every scene we
ship) whose optical axes differ by at most `max_angle` degrees, spread evenly over the scene
up to `max_pairs`. Each method's matches go through the same estimator: essential matrix
with the GT intrinsics (OpenCV RANSAC, `ransac_px` at full resolution) and `recoverPose`.
Error = max(rotation error, translation-direction error); failures count as infinite.
Metrics: AUC@5/10/20 degrees (percent), median matches, seconds per pair.
"""

import logging
import time

import numpy as np
from tqdm import tqdm

from ..gt import load_model
from ..metrics import pose_auc, rotation_angle_deg
from .base import OPENCV_SIFT, OURS, SuiteSkipped, image_dir, scene_folders
from .matchers import DensePairMatcher, SiftPairMatcher
from .twoview import gt_relative_pose, pose_error, relative_pose

logger = logging.getLogger(__name__)

THRESHOLDS = (5, 10, 20)
COLUMNS = ["auc@5", "auc@10", "auc@20", "matches", "pairs", "s/pair"]
PLOT = (["auc@5", "auc@10", "auc@20"], "pose AUC (%)")

default_conf = {
    "max_pairs": 20,        # per scene
    "quick_max_pairs": 4,
    "max_gap": 3,           # pair images up to this many apart in name order
    "max_angle": 60.0,      # degrees between optical axes
    "ransac_px": 1.0,       # essential-matrix threshold, full-resolution px
    "dense": {"resize": 640},
    "sift": {"resize": 1600},
}


def select_pairs(gt, names, max_gap: int, max_angle: float, max_pairs: int) -> list:
    """Deterministic pairs of `names` (see the module doc)."""
    cands = []
    for i, n0 in enumerate(names):
        for n1 in names[i + 1:i + 1 + max_gap]:
            R, t = gt_relative_pose(gt.find_image_with_name(n0), gt.find_image_with_name(n1))
            if rotation_angle_deg(R) <= max_angle and np.linalg.norm(t) > 1e-9:
                cands.append((n0, n1))
    if len(cands) > max_pairs:
        keep = np.unique(np.linspace(0, len(cands) - 1, max_pairs).round().astype(int))
        cands = [cands[k] for k in keep]
    return cands


def evaluate_method(matcher, gt, pairs, conf, desc) -> dict:
    errors, counts, seconds = [], [], []
    for n0, n1 in tqdm(pairs, desc=desc, unit="pair", leave=False):
        im0, im1 = gt.find_image_with_name(n0), gt.find_image_with_name(n1)
        t0 = time.perf_counter()
        m = matcher(n0, n1)
        est = relative_pose(m["keypoints0"], m["keypoints1"], gt.cameras[im0.camera_id],
                            gt.cameras[im1.camera_id], conf["ransac_px"])
        seconds.append(time.perf_counter() - t0)
        counts.append(len(m["keypoints0"]))
        errors.append(np.inf if est is None else pose_error(*est, *gt_relative_pose(im0, im1)))
    out = {f"auc@{t}": 100 * a for t, a in zip(THRESHOLDS, pose_auc(errors, THRESHOLDS))}
    out.update({"matches": float(np.median(counts)), "pairs": len(pairs),
                "s/pair": float(np.mean(seconds)), "median_error_deg": float(np.median(errors))})
    return out


def scene_pairs(ctx, conf) -> list:
    """(name, images folder, gt model, pairs) for every usable GT scene."""
    out = []
    max_pairs = conf["quick_max_pairs"] if ctx.quick else conf["max_pairs"]
    for name, folder, _ in scene_folders(ctx, need_gt=True):
        gt = load_model(folder / "gt")
        images = image_dir(folder)
        names = sorted(im.name for im in gt.images.values()
                       if im.has_pose and (images / im.name).is_file())
        pairs = select_pairs(gt, names, conf["max_gap"], conf["max_angle"], max_pairs)
        if pairs:
            out.append((name, images, gt, pairs))
        else:
            logger.warning("%s: no pairs within %g degrees; skipped", folder, conf["max_angle"])
    return out


def run(ctx, conf=None) -> dict:
    conf = {**default_conf, **(conf or {})}
    scenes = scene_pairs(ctx, conf)
    if not scenes:
        raise SuiteSkipped(f"no scenes with images/ and gt/ under {ctx.scenes_root}"
                           + ("" if ctx.quick else f" or {ctx.data_root}/scenes"))
    results = {}
    for name, images, gt, pairs in scenes:
        with DensePairMatcher(ctx.model, images, conf["dense"]) as dense, \
                SiftPairMatcher(images, conf["sift"]) as sift:
            results[name] = {OURS: evaluate_method(dense, gt, pairs, conf, f"{name} {OURS}"),
                             OPENCV_SIFT: evaluate_method(sift, gt, pairs, conf, f"{name} {OPENCV_SIFT}")}
        logger.info("pairs %s: %s AUC@5 %.1f, %s AUC@5 %.1f", name, OURS, results[name][OURS]["auc@5"],
                    OPENCV_SIFT, results[name][OPENCV_SIFT]["auc@5"])
    return results
