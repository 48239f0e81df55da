"""Labelling of nearby video frames (GIM): the current dense matcher plus SIFT, filtered by a
robustly fitted fundamental matrix.

Keypoints are pixel coordinates in the pixel-centre convention of `recon_match.coords`
(OpenCV's keypoint convention is the same). A pair's labels are a dict
`{"kp0": N x 2 float32, "kp1": N x 2 float32, "conf": N float32 in (0, 1]}`.

Why both matchers: SIFT is exact where it fires (textured corners) and is independent of
the network, so it brings correspondences the current model gets wrong; the model brings
dense coverage of weakly textured regions. Neither is trusted alone: only matches that a
tight fundamental matrix explains in both directions survive, which also drops moving
objects (they violate the static scene's epipolar geometry).
"""

import logging

import cv2
import numpy as np
import torch

from ..config import merge_conf

logger = logging.getLogger(__name__)

default_conf = {
    "gaps": [1, 2, 3],          # frame distances of the labelled nearby pairs
    "sift_features": 2000,
    "sift_ratio": 0.8,          # Lowe's ratio test
    "use_model": True,
    "model_matches": 2000,      # per pair, sampled mutual-consistent from the dense warp
    "min_certainty": 0.3,       # model matches below are not even proposed
    "max_size": 512,            # frames are downscaled for the model so the long side <= this
    "epipolar_px": 1.0,         # MAGSAC threshold and symmetric epipolar distance bound
    "min_matches": 30,          # pairs with fewer verified matches are dropped
}


def empty_labels():
    z = np.zeros((0, 2), np.float32)
    return {"kp0": z, "kp1": z.copy(), "conf": np.zeros(0, np.float32)}


# ---------------------------------------------------------------------- SIFT
def sift_features(image, num):
    """RGB uint8 H x W x 3 -> (keypoints N x 2 float32, descriptors N x 128 float32)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    kps, desc = cv2.SIFT_create(nfeatures=num).detectAndCompute(gray, None)
    if desc is None or len(kps) < 2:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    return np.array([k.pt for k in kps], np.float32), desc.astype(np.float32)


def _nn2(d0, d1):
    """For each row of d0: index of the nearest row of d1 and the ratio of the two nearest."""
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d0, d1, k=2)
    idx = np.array([m[0].trainIdx for m in knn], np.int64)
    ratio = np.array([m[0].distance / max(m[1].distance, 1e-9) for m in knn], np.float32)
    return idx, ratio


def sift_matches(feat0, feat1, ratio):
    """Ratio-test matches that are also mutual nearest neighbours -> labels dict.
    conf = 1 - distance ratio (how distinctive the match is)."""
    (k0, d0), (k1, d1) = feat0, feat1
    if len(k0) < 2 or len(k1) < 2:
        return empty_labels()
    i01, r01 = _nn2(d0, d1)
    i10, r10 = _nn2(d1, d0)
    ok = (r01 < ratio) & (i10[i01] == np.arange(len(k0))) & (r10[i01] < ratio)
    return {"kp0": k0[ok], "kp1": k1[i01[ok]], "conf": (1 - r01[ok]).astype(np.float32)}


# ---------------------------------------------------------------------- model
def to_tensor(image, max_size, device):
    """RGB uint8 -> (1 x 3 x h x w float tensor, scale (sx, sy) from original to tensor pixels)."""
    h, w = image.shape[:2]
    s = min(1.0, max_size / max(h, w))
    if s < 1:
        image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255)[None]
    return t.to(device), (image.shape[1] / w, image.shape[0] / h)


@torch.no_grad()
def model_matches(model, feats0, feats1, scale0, scale1, num, min_certainty):
    """Mutual-consistent matches sampled from the dense warp (forward-backward checked by
    `model.sample(..., mutual=True)`), in original-image pixels -> labels dict."""
    out = model.match(feats0, feats1)
    m = model.sample(out, num=num, mutual=True)[0]
    keep = m["scores"] >= min_certainty
    kp0 = (m["keypoints0"][keep].cpu().numpy() + 0.5) / np.float32(scale0) - 0.5
    kp1 = (m["keypoints1"][keep].cpu().numpy() + 0.5) / np.float32(scale1) - 0.5
    return {"kp0": kp0.astype(np.float32), "kp1": kp1.astype(np.float32),
            "conf": m["scores"][keep].cpu().numpy().astype(np.float32)}


# ---------------------------------------------------------------------- geometry
def concat_labels(*parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in ("kp0", "kp1", "conf")}


def select(labels, mask):
    return {k: v[mask] for k, v in labels.items()}


def epipolar_distances(F, kp0, kp1):
    """Distances (px) of kp1 to the epipolar line F kp0 and of kp0 to F^T kp1: N x 2."""
    x0 = np.concatenate([kp0, np.ones((len(kp0), 1))], 1).astype(np.float64)
    x1 = np.concatenate([kp1, np.ones((len(kp1), 1))], 1).astype(np.float64)
    l1, l0 = x0 @ F.T, x1 @ F
    num = np.abs(np.sum(x1 * l1, 1))
    d1 = num / np.maximum(np.hypot(l1[:, 0], l1[:, 1]), 1e-12)
    d0 = num / np.maximum(np.hypot(l0[:, 0], l0[:, 1]), 1e-12)
    return np.stack([d0, d1], 1)


def verify(labels, threshold, min_matches, seed=0):
    """Keep the matches a MAGSAC++ fundamental matrix explains within `threshold` px in both
    images (symmetric epipolar distance), with conf scaled down by the residual.
    Returns (labels, F or None); empty labels when fewer than `min_matches` survive."""
    n = len(labels["kp0"])
    if n < max(min_matches, 8):
        return empty_labels(), None
    cv2.setRNGSeed(seed)  # MAGSAC samples with OpenCV's RNG: seed it for repeatable labels
    try:
        F, _ = cv2.findFundamentalMat(labels["kp0"].astype(np.float64), labels["kp1"].astype(np.float64),
                                      cv2.USAC_MAGSAC, threshold, 0.9999, 10000)
    except cv2.error:  # OpenCV asserts on some degenerate inputs (all points on a line, ...)
        return empty_labels(), None
    if F is None or F.shape != (3, 3):
        return empty_labels(), None
    dist = epipolar_distances(F, labels["kp0"], labels["kp1"]).max(1)
    ok = dist < threshold
    if ok.sum() < min_matches:
        return empty_labels(), None
    out = select(labels, ok)
    out["conf"] = (out["conf"] * (1 - 0.5 * dist[ok] / threshold)).astype(np.float32)
    return out, F


def dedupe(labels, radius=0.5):
    """Drop matches whose kp0 AND kp1 repeat an earlier (higher-conf) match within `radius` px."""
    if len(labels["kp0"]) == 0:
        return labels
    order = np.argsort(-labels["conf"], kind="stable")
    lab = select(labels, order)
    key = np.round(np.concatenate([lab["kp0"], lab["kp1"]], 1) / radius).astype(np.int64)
    _, first = np.unique(key, axis=0, return_index=True)
    return select(lab, np.sort(first))


# ---------------------------------------------------------------------- clip
class FrameLabeller:
    """Labels nearby pairs of one clip; caches SIFT and model features per frame."""

    def __init__(self, model, conf=None):
        self.conf = merge_conf(default_conf, conf, "label")
        self.model = model
        self.device = next(model.parameters()).device if model is not None else torch.device("cpu")

    def pairs(self, num_frames):
        return [(i, i + g) for i in range(num_frames) for g in self.conf["gaps"] if i + g < num_frames]

    @torch.no_grad()
    def features(self, image):
        c = self.conf
        feats = {"sift": sift_features(image, c["sift_features"])}
        if c["use_model"] and self.model is not None:
            t, scale = to_tensor(image, c["max_size"], self.device)
            feats["model"], feats["scale"] = self.model.extract(t), scale
        return feats

    def candidates(self, f0, f1):
        """Unverified SIFT + model matches of one pair from the cached features of its frames."""
        c = self.conf
        parts = [sift_matches(f0["sift"], f1["sift"], c["sift_ratio"])]
        if "model" in f0:
            parts.append(model_matches(self.model, f0["model"], f1["model"], f0["scale"], f1["scale"],
                                       c["model_matches"], c["min_certainty"]))
        return dedupe(concat_labels(*parts))

    def label_pair(self, f0, f1):
        """Verified labels of one pair from the cached features of its two frames."""
        labels, _ = verify(self.candidates(f0, f1), self.conf["epipolar_px"], self.conf["min_matches"])
        return labels

    def label_clip(self, frames, progress=None):
        """frames: list of RGB uint8 images -> {(i, j): labels} for the verified nearby pairs."""
        cache, out = {}, {}
        for i, j in self.pairs(len(frames)):
            for k in (i, j):
                if k not in cache:
                    cache[k] = self.features(frames[k])
            for k in [k for k in cache if k < i]:  # pairs are sorted by i: older frames are done
                del cache[k]
            labels = self.label_pair(cache[i], cache[j])
            if len(labels["kp0"]):
                out[(i, j)] = labels
            if progress is not None:
                progress.update(1)
        return out
