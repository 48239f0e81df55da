"""Query-to-reference matchers that output 2D–3D correspondences for the pose solver.

Both matchers expose the same two calls:
- `prepare(image)` -> a handle for one query image (H x W x 3 uint8 RGB); features computed once;
- `correspondences(handle, ref_name)` -> dict `query_xy` N x 2 (pixel centres in the query at
  full resolution), `point3D_ids` N, `scores` N (higher is better).
Reference images are read from `image_dir` and their features kept in a small LRU cache,
since neighbouring queries share references.
"""

import logging
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..coords import normalize, rescale
from ..imageio import read_image
from ..config import merge_conf
from ..subpixel import refine_matches
from .refmap import ReferenceMap

logger = logging.getLogger(__name__)


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        self[key] = value = make()
        while len(self) > self.size:
            self.popitem(last=False)
        return value


def resized_shape(width: int, height: int, long_side: int, multiple: int = 16) -> tuple[int, int]:
    """(w, h) with the long side near `long_side`, both multiples of `multiple`, aspect kept."""
    s = long_side / max(width, height)
    return (max(multiple, int(round(width * s / multiple)) * multiple),
            max(multiple, int(round(height * s / multiple)) * multiple))


class _ReferenceImages:
    """Reads reference images by name from `image_dir` with errors naming the missing file."""

    def __init__(self, image_dir, refmap: ReferenceMap):
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"{self.image_dir}: reference image folder does not exist")
        missing = [n for n in refmap.names if not (self.image_dir / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.image_dir}: {len(missing)} of {len(refmap.names)} "
                                    f"reference images of the model are missing (e.g. {missing[0]})")

    def read(self, name: str, grayscale: bool = False) -> np.ndarray:
        return read_image(self.image_dir / name, grayscale=grayscale)


class DenseQueryMatcher:
    """Our dense matcher. Mode "warp" reads the reference->query warp at every reference
    observation that has a 3D point (cycle-checked through the query->reference warp), so no
    correspondence is lost to a nearest-keypoint search; mode "nearest" samples matches with
    `model.sample` and attaches each to the nearest observation within `max_error` px."""

    default_conf = {
        # long side fed to the network; 384 as for SfM (`recon_match.matching`): aerial queries
        # 91.7 -> 100 % at (0.5 m, 5 deg), thermal 8.3 -> 16.7 %, night 0 -> 42-50 %, 3x faster than 640
        "resize": 384,
        "mode": "warp",         # "warp" | "nearest"
        "min_certainty": 0.2,   # warp mode: certainty of the reference->query warp
        "cycle_error": 3.0,     # warp mode: px (network resolution) back-and-forth tolerance
        "num_samples": 5000,    # nearest mode: matches sampled per pair
        "max_error": 2.0,       # nearest mode: px (network resolution) to the nearest observation
        "cache_size": 32,       # reference images whose features stay in memory
        # warp mode: NCC sub-pixel refinement of the query points on the full-resolution
        # images, anchored on the reference observations (unplaced ones stay as they are)
        "refine": True,
        "refine_window": 21,    # px, full resolution
        "refine_search": 2.0,   # px at network resolution
    }

    def __init__(self, model, refmap: ReferenceMap, image_dir, conf=None, device=None):
        self.conf = merge_conf(self.default_conf, conf, "dense matcher")
        if self.conf["mode"] not in ("warp", "nearest"):
            raise ValueError(f"dense matcher mode must be 'warp' or 'nearest', not {self.conf['mode']!r}")
        self.model, self.refmap = model.eval(), refmap
        self.device = device or next(model.parameters()).device
        self.refs = _ReferenceImages(image_dir, refmap)
        self._cache = _LRU(self.conf["cache_size"])

    @torch.no_grad()
    def prepare(self, image: np.ndarray) -> dict:
        """H x W x 3 uint8 -> {"feats", "size" (W, H), "scale" (sx, sy) full -> network}."""
        h, w = image.shape[:2]
        rw, rh = resized_shape(w, h, self.conf["resize"])
        small = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(small).permute(2, 0, 1)[None].float().div(255).to(self.device)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return {"feats": self.model.extract(x), "size": (w, h), "scale": (rw / w, rh / h),
                "gray": gray}

    @torch.no_grad()
    def global_descriptor(self, handle: dict) -> np.ndarray:
        return self.model.global_descriptor(handle["feats"])[0].cpu().numpy().astype(np.float32)

    def reference(self, name: str) -> dict:
        return self._cache.get_or(name, lambda: self.prepare(self.refs.read(name)))

    @torch.no_grad()
    def correspondences(self, query: dict, ref_name: str) -> dict:
        ref = self.reference(ref_name)
        out = self.model.match(query["feats"], ref["feats"])
        if self.conf["mode"] == "warp":
            return self._from_warp(out, query, ref, ref_name)
        return self._from_samples(out, query, ref, ref_name)

    def _from_warp(self, out, query, ref, ref_name):
        obs_xy, ids = self.refmap.observations(ref_name)
        xy_r = rescale(obs_xy, ref["scale"]).astype(np.float32)  # network resolution
        size_r = tuple(out["warp1"].shape[1:3][::-1])
        size_q = tuple(out["warp0"].shape[1:3][::-1])
        to_q, cert = _bilinear(out["warp1"], out["certainty1"], xy_r, size_r)
        back, _ = _bilinear(out["warp0"], out["certainty0"], to_q, size_q)
        inside = (to_q > -0.5).all(1) & (to_q[:, 0] < size_q[0] - 0.5) & (to_q[:, 1] < size_q[1] - 0.5)
        cycle = np.linalg.norm(back - xy_r, axis=1)
        keep = inside & (cert >= self.conf["min_certainty"]) & (cycle <= self.conf["cycle_error"])
        inv = (1 / query["scale"][0], 1 / query["scale"][1])
        query_xy = rescale(to_q[keep].astype(np.float64), inv)
        if self.conf["refine"] and keep.any():
            search = max(2.0, self.conf["refine_search"] * max(inv))
            refined, _, ok = refine_matches(ref["gray"], query["gray"], obs_xy[keep], query_xy,
                                            self.conf["refine_window"], search)
            query_xy[ok] = refined[ok]
        return {"query_xy": query_xy, "point3D_ids": ids[keep],
                "scores": cert[keep].astype(np.float64)}

    def _from_samples(self, out, query, ref, ref_name):
        m = self.model.sample(out, num=self.conf["num_samples"], mutual=True)[0]
        kq, kr = m["keypoints0"].cpu().numpy(), m["keypoints1"].cpu().numpy()
        inv_q = (1 / query["scale"][0], 1 / query["scale"][1])
        inv_r = (1 / ref["scale"][0], 1 / ref["scale"][1])
        max_error = self.conf["max_error"] * max(inv_r)
        keep, ids = self.refmap.nearest_observations(
            ref_name, rescale(kr.astype(np.float64), inv_r), max_error)
        return {"query_xy": rescale(kq[keep].astype(np.float64), inv_q), "point3D_ids": ids,
                "scores": m["scores"].cpu().numpy()[keep].astype(np.float64)}


def _bilinear(warp, certainty, xy, size):
    """Sample a 1 x H x W x 2 warp and 1 x H x W certainty at N pixel positions `xy`."""
    grid = normalize(torch.from_numpy(np.asarray(xy, np.float32)), size).to(warp.device)[None, None]
    field = torch.cat([warp.permute(0, 3, 1, 2), certainty[:, None]], 1).float()
    s = F.grid_sample(field, grid, mode="bilinear", align_corners=False, padding_mode="border")
    s = s[0, :, 0].T.cpu().numpy()  # N x 3
    return s[:, :2], s[:, 2]


class SiftQueryMatcher:
    """OpenCV SIFT + Lowe ratio test, then each reference keypoint is attached to the nearest
    map observation within `max_error` px: the baseline for the same pose solver."""

    default_conf = {
        "resize": 1600,        # long side SIFT sees (full resolution when smaller)
        "max_features": 8192,
        "ratio": 0.8,
        "max_error": 3.0,      # px at the SIFT resolution
        "cache_size": 32,
    }

    def __init__(self, refmap: ReferenceMap, image_dir, conf=None):
        self.conf = merge_conf(self.default_conf, conf, "sift matcher")
        self.refmap = refmap
        self.refs = _ReferenceImages(image_dir, refmap)
        self.sift = cv2.SIFT_create(nfeatures=self.conf["max_features"])
        self._cache = _LRU(self.conf["cache_size"])

    def prepare(self, image: np.ndarray) -> dict:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        s = min(1.0, self.conf["resize"] / max(w, h))
        if s < 1:
            gray = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        scale = (gray.shape[1] / w, gray.shape[0] / h)
        kps, desc = self.sift.detectAndCompute(gray, None)
        xy = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
        inv = (1 / scale[0], 1 / scale[1])
        return {"xy": rescale(xy, inv), "desc": desc, "scale": scale}

    def reference(self, name: str) -> dict:
        return self._cache.get_or(name, lambda: self.prepare(self.refs.read(name, grayscale=True)))

    def correspondences(self, query: dict, ref_name: str) -> dict:
        ref = self.reference(ref_name)
        empty = {"query_xy": np.zeros((0, 2)), "point3D_ids": np.zeros(0, np.int64), "scores": np.zeros(0)}
        if query["desc"] is None or ref["desc"] is None or len(query["desc"]) < 2 or len(ref["desc"]) < 2:
            return empty
        knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(query["desc"], ref["desc"], k=2)
        good = [(m.queryIdx, m.trainIdx, m.distance / max(n.distance, 1e-9))
                for m, n in (p for p in knn if len(p) == 2) if m.distance < self.conf["ratio"] * n.distance]
        if not good:
            return empty
        iq, ir, ratio = (np.array(v) for v in zip(*good))
        max_error = self.conf["max_error"] / min(ref["scale"])
        keep, ids = self.refmap.nearest_observations(ref_name, ref["xy"][ir], max_error)
        return {"query_xy": query["xy"][iq[keep]], "point3D_ids": ids, "scores": 1.0 - ratio[keep]}
