"""Synthetic suite: held-out mixture pairs with exact dense ground truth.

Pairs come from `MixtureDataset`'s validation split (other photos, other seed, the held-out
style families included), the same number from every generator. Dense metrics are the
trainer's (`recon_match.train.metrics.ValidationMeter`): end-point error and PCK@1/3/5 px on
covisible pixels, per group (`all`, `gen/<generator>`, `style/<style>`, `styles_seen`,
`styles_held_out`). Sparse metrics compare our sampled matches with OpenCV SIFT on the same
images: precision (share of matches within 3 px of the ground truth), correct matches per
pair, and on pure-homography pairs the success of a MAGSAC++ homography (mean corner error
< 10 px), the zero-shot cross-modality test of the held-out styles.
"""

import logging
from collections import defaultdict

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ...coords import normalize
from ...data import MixtureDataset
from ...data.dataset import to_torch
from ...train.metrics import ValidationMeter
from .base import OPENCV_SIFT, OURS
from .matchers import ratio_match, sift_detect
from .twoview import corner_error, homography

logger = logging.getLogger(__name__)

COLUMNS = ["pairs", "epe", "pck1", "pck3", "pck5", "match_precision", "correct_matches",
           "h_success"]
PLOT = (["pck3", "match_precision"], "fraction")
GENERATORS = ("homography", "lifting", "multi_instance", "multiview")
CORRECT_PX = 3.0
SUCCESS_PX = 10.0
GT_FIT_PX = 0.01  # px; lens-distorted homography pairs fit worse and get no success metric

default_conf = {
    "generators": GENERATORS,
    "pairs_per_generator": 24,
    "quick_pairs_per_generator": 3,
    "size": (240, 320),
    "quick_size": (192, 256),
    "batch_size": 4,
    "num_matches": 2000,
    "data": {"split": "val", "seed": 12345, "include_held_out": True, "style_prob": 0.5},
}


def plot_datasets(results) -> list:
    """Groups drawn in the report: all, per generator, seen vs held-out styles."""
    return [g for g in results if not g.startswith("style/")]


def make_dataset(ctx, conf) -> MixtureDataset:
    natural = ctx.data("natural")
    return MixtureDataset({**conf["data"], "weights": {g: 1.0 for g in GENERATORS},
                           "size": conf["quick_size"] if ctx.quick else conf["size"],
                           "photo_root": str(natural) if natural else None})


def gt_homography(pair) -> np.ndarray | None:
    """The homography of a pure-homography pair, fitted to its dense warp; None otherwise."""
    if pair["generator"] != "homography":
        return None
    valid = pair["valid0"].numpy()
    ys, xs = np.nonzero(valid[::4, ::4])
    if len(xs) < 16:
        return None
    src = np.stack([xs * 4, ys * 4], 1).astype(np.float64)
    dst = pair["warp0"].numpy()[ys * 4, xs * 4].astype(np.float64)
    H, _ = cv2.findHomography(src, dst, 0)
    if H is None:
        return None
    proj = cv2.perspectiveTransform(src[None], H)[0]
    return H if np.median(np.linalg.norm(proj - dst, axis=1)) < GT_FIT_PX else None


def match_errors(kp0, kp1, pair) -> np.ndarray:
    """Distance (px in image1) of each match to the ground truth warp at kp0 (bilinear);
    inf where kp0 is not covisible."""
    if len(kp0) == 0:
        return np.zeros(0)
    h, w = pair["valid0"].shape
    pts = torch.as_tensor(np.asarray(kp0, np.float32))
    grid = normalize(pts, (w, h))[None, None]
    gt = F.grid_sample(pair["warp0"].permute(2, 0, 1)[None], grid, mode="bilinear",
                       align_corners=False)[0, :, 0].T.numpy()
    ix = np.clip(np.round(kp0).astype(int), 0, [w - 1, h - 1])
    valid = pair["valid0"].numpy()[ix[:, 1], ix[:, 0]]
    err = np.linalg.norm(gt - np.asarray(kp1), axis=1)
    return np.where(valid, err, np.inf)


class SparseMeter:
    """Per group and method: match precision, correct matches per pair, homography success."""

    def __init__(self):
        self.sums = defaultdict(lambda: defaultdict(list))

    def update(self, groups, method, kp0, kp1, pair, H_gt):
        err = match_errors(kp0, kp1, pair)
        correct = int((err < CORRECT_PX).sum())
        success = None
        if H_gt is not None:
            h, w = pair["valid0"].shape
            success = corner_error(homography(kp0, kp1, CORRECT_PX), H_gt, w, h) < SUCCESS_PX
        for g in groups:
            s = self.sums[(g, method)]
            s["correct"].append(correct)
            s["total"].append(len(kp0))
            if success is not None:
                s["success"].append(success)

    def summary(self) -> dict:
        out = defaultdict(dict)
        for (g, method), s in self.sums.items():
            out[g][method] = {
                "match_precision": sum(s["correct"]) / max(sum(s["total"]), 1),
                "correct_matches": float(np.mean(s["correct"])),
                "h_success": 100 * float(np.mean(s["success"])) if s["success"] else None,
                "h_pairs": len(s["success"])}
        return out


def _gray(image) -> np.ndarray:
    rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@torch.no_grad()
def run(ctx, conf=None) -> dict:
    conf = {**default_conf, **(conf or {})}
    ds = make_dataset(ctx, conf)
    n = conf["quick_pairs_per_generator"] if ctx.quick else conf["pairs_per_generator"]
    items = [(g, i) for g in conf["generators"] for i in range(n)]
    model = ctx.model
    device = next(model.parameters()).device
    dense, sparse = ValidationMeter(ds.conf["held_out_styles"]), SparseMeter()
    sift = cv2.SIFT_create(nfeatures=conf["num_matches"])
    bs = conf["batch_size"]
    for k in tqdm(range(0, len(items), bs), desc="synthetic", unit="batch", leave=False):
        pairs = [to_torch(ds.sample(i, name=g)) for g, i in items[k:k + bs]]
        batch = {key: torch.stack([p[key] for p in pairs]) for key in
                 ("image0", "image1", "warp0", "valid0", "warp1", "valid1")}
        batch.update({key: [p[key] for p in pairs] for key in ("generator", "style")})
        out = model({"image0": batch["image0"].to(device), "image1": batch["image1"].to(device)})
        out = {key: v.cpu() for key, v in out.items() if torch.is_tensor(v)}
        dense.update(out, batch)
        samples = model.sample(out, num=conf["num_matches"], mutual=True)
        for p, s in zip(pairs, samples):
            groups, H_gt = dense.groups(p["generator"], p["style"]), gt_homography(p)
            sparse.update(groups, OURS, s["keypoints0"].numpy().astype(np.float64),
                          s["keypoints1"].numpy().astype(np.float64), p, H_gt)
            m = ratio_match(*sift_detect(sift, _gray(p["image0"]), None),
                            *sift_detect(sift, _gray(p["image1"]), None), 0.8)
            sparse.update(groups, OPENCV_SIFT, m["keypoints0"], m["keypoints1"], p, H_gt)
    results = sparse.summary()
    for g, metrics in dense.summary().items():
        results[g][OURS] = {**{k: metrics[k] for k in ("pairs", "epe", "median", "pck1", "pck3",
                                                       "pck5", "prec@0.8", "cov@0.8")},
                            **results[g].get(OURS, {})}
    order = sorted(results, key=lambda g: (g != "all", g.split("/")[0], g))
    return {g: {m: results[g][m] for m in (OURS, OPENCV_SIFT) if m in results[g]} for g in order}
