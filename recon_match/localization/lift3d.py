"""Lift3D-style localization: descriptors lifted from the reference views onto the 3D points,
so a query is matched to the map directly, without a pairwise network pass per reference.

Each 3D point gets the mean of the L2-normalised backbone features sampled at its observations
in every reference view, renormalised (a view-consistent descriptor): 1/8-resolution `mid`
features to find the match, 1/2-resolution `fine` features to place it inside its 1/8 cell.
A query's 1/8 cells are matched to the points seen by a selected reference by mutual nearest
neighbour with a ratio test; each match then moves to the best `fine` position in a window
around its cell.
"""

import logging

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..coords import normalize, rescale
from .matchers import DenseQueryMatcher

logger = logging.getLogger(__name__)

STRIDES = {"mid": 8, "fine": 2}


def sample_features(fmap, xy, stride):
    """L2-normalised features of a 1 x C x h x w map (at `stride`) at N input-pixel positions
    `xy` (pixel-centre convention), bilinear -> N x C."""
    h, w = fmap.shape[-2:]
    grid = normalize(torch.as_tensor(xy, dtype=torch.float32, device=fmap.device), (w * stride, h * stride))
    s = F.grid_sample(fmap.float(), grid[None, None], mode="bilinear", align_corners=False,
                      padding_mode="border")
    return F.normalize(s[0, :, 0].T, dim=-1)


class PointDescriptors:
    """`ids` N (sorted point3D ids) and per level (`mid`, `fine`) N x C unit descriptors."""

    def __init__(self, ids, desc):
        self.ids, self.desc = ids, desc

    def rows(self, point_ids):
        return np.searchsorted(self.ids, point_ids)

    @classmethod
    @torch.no_grad()
    def lift(cls, matcher, progress=True):
        """Mean of every observation's normalised features, over all reference views."""
        refmap = matcher.refmap
        ids = np.unique(np.concatenate([refmap.observations(n)[1] for n in refmap.names] or [[]])).astype(np.int64)
        sums = {k: None for k in STRIDES}
        for name in tqdm(refmap.names, desc="lift descriptors", unit="img", disable=not progress):
            xy, pid = refmap.observations(name)
            if len(pid) == 0:
                continue
            ref = matcher.prepare(matcher.refs.read(name))
            xy_net = rescale(xy, ref["scale"])
            rows = torch.from_numpy(np.searchsorted(ids, pid))
            for level, stride in STRIDES.items():
                f = sample_features(ref["feats"][level], xy_net, stride).cpu()
                if sums[level] is None:
                    sums[level] = torch.zeros(len(ids), f.shape[1])
                sums[level].index_add_(0, rows, f)
        desc = {k: F.normalize(v, dim=-1) if v is not None else torch.zeros(0, 1) for k, v in sums.items()}
        logger.info("lifted descriptors of %d 3D points from %d reference images", len(ids), len(refmap.names))
        return cls(ids, desc)


class Lift3DQueryMatcher(DenseQueryMatcher):
    """Query-to-map matching against lifted point descriptors (same calls as the other
    matchers: `prepare(image)`, `correspondences(handle, ref_name)`); the descriptors of the
    whole map are lifted once, on first use."""

    default_conf = {
        **DenseQueryMatcher.default_conf,
        "min_similarity": 0.5,  # cosine of the 1/8 descriptors
        "ratio": 0.95,          # best / second-best descriptor distance of a point over the query
        "fine_window": 6,       # side of the 1/2-resolution search window around a 1/8 cell
    }

    def __init__(self, model, refmap, image_dir, conf=None, device=None):
        super().__init__(model, refmap, image_dir, conf, device)
        self._points = None

    @property
    def points(self) -> PointDescriptors:
        if self._points is None:
            self._points = PointDescriptors.lift(self)
        return self._points

    def _query_maps(self, query):
        """Normalised query feature maps (computed once per query handle)."""
        if "lift3d" not in query:
            query["lift3d"] = {k: F.normalize(query["feats"][k][0].float(), dim=0) for k in STRIDES}
        return query["lift3d"]

    @torch.no_grad()
    def correspondences(self, query: dict, ref_name: str) -> dict:
        _, pid = self.refmap.observations(ref_name)
        pid = np.unique(pid)
        empty = {"query_xy": np.zeros((0, 2)), "point3D_ids": np.zeros(0, np.int64), "scores": np.zeros(0)}
        if len(pid) < 2:
            return empty
        maps = self._query_maps(query)
        rows = torch.from_numpy(self.points.rows(pid))
        qmid = maps["mid"]
        c, h, w = qmid.shape
        sim = self.points.desc["mid"][rows].to(qmid.device) @ qmid.reshape(c, -1)  # points x cells
        top = sim.topk(2, dim=1)
        best, cell = top.values[:, 0], top.indices[:, 0]
        dist = (2 - 2 * top.values.clamp(max=1)).sqrt()
        keep = (best >= self.conf["min_similarity"]) & (dist[:, 0] < self.conf["ratio"] * dist[:, 1])
        keep &= sim.argmax(0)[cell] == torch.arange(len(pid), device=sim.device)  # mutual
        keep = keep.cpu()
        if not keep.any():
            return empty
        xy = self._place(maps["fine"], self.points.desc["fine"][rows[keep]], cell[keep].cpu(), w)
        inv = (1 / query["scale"][0], 1 / query["scale"][1])
        return {"query_xy": rescale(xy, inv), "point3D_ids": pid[keep.numpy()],
                "scores": best[keep].cpu().numpy().astype(np.float64)}

    def _place(self, qfine, desc, cell, w_mid):
        """Network-pixel position of each match: the best `fine` cell in a window around its
        1/8 cell (argmax of the cosine with the point's fine descriptor)."""
        per_cell = STRIDES["mid"] // STRIDES["fine"]  # fine pixels along a 1/8 cell
        k = self.conf["fine_window"]
        _, hf, wf = qfine.shape
        d = torch.arange(k) - (k - per_cell) // 2
        fx = ((cell % w_mid) * per_cell)[:, None, None] + d[None, None, :]
        fy = ((cell // w_mid) * per_cell)[:, None, None] + d[None, :, None]
        fx, fy = fx.expand(-1, k, k).clamp(0, wf - 1), fy.expand(-1, k, k).clamp(0, hf - 1)
        cand = qfine[:, fy, fx]  # C x N x k x k
        score = torch.einsum("cnij,nc->nij", cand, desc.to(qfine.device)).flatten(1)
        pick = score.argmax(1).cpu()
        px, py = fx.flatten(1).gather(1, pick[:, None])[:, 0], fy.flatten(1).gather(1, pick[:, None])[:, 0]
        stride = STRIDES["fine"]
        return np.stack([(px.numpy() + 0.5) * stride - 0.5, (py.numpy() + 0.5) * stride - 0.5], 1)
