"""Dense matches -> keypoints shared by all pairs of an image (two passes, bounded memory).

Dense matchers give every pair its own match positions; SfM needs each image's keypoints to
be shared by all of its pairs, or tracks stay two views long. hloc snaps each pair's matches
to sub-bins independently and gets tracks of ~3 views. Here:

1. **Vote, per image**: every match endpoint in the image, from every pair that contains it,
   votes with its score into a grid cell of `cell_size` units. The `max_kps` cells with the
   most votes become the keypoints; a keypoint sits at the score-weighted mean of its votes
   (`position="mean"`, sub-pixel) or at its best vote (`"best"`). One image is processed at
   a time, so memory holds one vote grid, not one per image.
2. **Assign, per pair**: each match endpoint goes to the nearest keypoint within `max_error`
   units (3 x 3 neighbouring cells); a match whose ends do not both land is dropped, and
   many-to-one matches keep the best score, so every keypoint has at most one partner per
   pair.

Units: `cell_size` and `max_error` are multiplied by each image's `scale` (original pixels
per unit; the matching engine passes the network resize factor so cells follow the
resolution the matches were made at). Positions are pixel-centre coordinates.
"""

import logging
import math
from collections import OrderedDict, defaultdict

import numpy as np
from tqdm import tqdm

from .h5io import write_features, write_matches
from .config import merge_conf

logger = logging.getLogger(__name__)

default_conf = {
    "cell_size": 4.0,      # grid cell side, in units (see module doc)
    "max_error": 2.0,      # assignment radius, in units; at most cell_size
    "max_kps": 8192,       # keypoints kept per image, by votes (None: all)
    "position": "mean",    # "mean": score-weighted mean of the votes in a cell; "best"
    "min_score": 0.0,      # matches scoring at or below this are ignored
}


def finite_matches(match: dict) -> dict:
    """The matches of a pair whose two endpoints and score are all finite."""
    kp0, kp1, s = (np.asarray(match[k]) for k in ("keypoints0", "keypoints1", "scores"))
    kp0, kp1, s = kp0.reshape(-1, 2), kp1.reshape(-1, 2), s.reshape(-1)
    ok = np.isfinite(kp0).all(1) & np.isfinite(kp1).all(1) & np.isfinite(s)
    return {"keypoints0": kp0[ok], "keypoints1": kp1[ok], "scores": s[ok]}


def clean(xy, scores, size):
    """Drop non-finite matches and points outside the W x H image; returns a keep mask."""
    xy, scores = np.asarray(xy), np.asarray(scores)
    w, h = size
    return (np.isfinite(xy).all(1) & np.isfinite(scores) & (xy[:, 0] >= -0.5)
            & (xy[:, 1] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] <= h - 0.5))


class Grid:
    """Square cells of side `cell` px over a W x H image; pixel-centre coordinates."""

    def __init__(self, size, cell: float):
        self.w, self.h = size
        self.cell = float(cell)
        self.gw = max(1, math.ceil(self.w / self.cell))
        self.gh = max(1, math.ceil(self.h / self.cell))
        self.n = self.gw * self.gh

    def cells(self, xy):
        """(cx, cy) integer cell coordinates of N x 2 points, clipped to the grid."""
        c = np.floor((np.asarray(xy, np.float64) + 0.5) / self.cell).astype(np.int64)
        return np.clip(c[:, 0], 0, self.gw - 1), np.clip(c[:, 1], 0, self.gh - 1)

    def index(self, xy):
        cx, cy = self.cells(xy)
        return cy * self.gw + cx


def choose_keypoints(observations, size, cell: float, max_kps, position="mean",
                     min_score=0.0):
    """Pass 1 for one image: keypoints from the votes of all its match endpoints.

    observations: iterable of (xy N x 2 pixels, scores N). Returns (keypoints K x 2
    float32, votes K float32), one keypoint per occupied cell, at most `max_kps`, in cell
    order.
    """
    grid = Grid(size, cell)
    wsum, wx, wy = (np.zeros(grid.n) for _ in range(3))
    best = np.full(grid.n, -np.inf)
    bxy = np.zeros((grid.n, 2))
    for xy, s in observations:
        xy, s = np.asarray(xy, np.float64).reshape(-1, 2), np.asarray(s, np.float64).reshape(-1)
        keep = clean(xy, s, size) & (s > min_score)
        xy, s = xy[keep], s[keep]
        if not len(s):
            continue
        c = grid.index(xy)
        wsum += np.bincount(c, s, grid.n)
        wx += np.bincount(c, s * xy[:, 0], grid.n)
        wy += np.bincount(c, s * xy[:, 1], grid.n)
        cmax = np.full(grid.n, -np.inf)
        np.maximum.at(cmax, c, s)
        top = (s == cmax[c]) & (s > best[c])  # this batch's best vote beats the earlier ones
        bxy[c[top]] = xy[top]
        best = np.maximum(best, cmax)
    occupied = np.flatnonzero(wsum > 0)
    if max_kps is not None and len(occupied) > max_kps:
        top = np.argsort(-wsum[occupied], kind="stable")[:max_kps]
        occupied = np.sort(occupied[top])
    if position == "mean":
        kpts = np.stack([wx[occupied], wy[occupied]], -1) / wsum[occupied, None]
    elif position == "best":
        kpts = bxy[occupied]
    else:
        raise ValueError(f"unknown keypoint position {position!r}; use 'mean' or 'best'")
    return kpts.astype(np.float32).reshape(-1, 2), wsum[occupied].astype(np.float32)


class KeypointIndex:
    """Nearest-keypoint lookup on a cell grid (cell >= search radius, so 3 x 3 cells do)."""

    def __init__(self, keypoints, scores, size, cell: float):
        self.kpts = np.asarray(keypoints, np.float64).reshape(-1, 2)
        self.grid = Grid(size, cell)
        self.lut = np.full(self.grid.n, -1, np.int64)
        # one keypoint per cell (quantized ones are); fixed ones keep their best per cell
        cell, s = self.grid.index(self.kpts), np.asarray(scores, np.float64).reshape(-1)
        cmax = np.full(self.grid.n, -np.inf)
        np.maximum.at(cmax, cell, s)
        win = np.flatnonzero(s == cmax[cell])
        cells, first = np.unique(cell[win], return_index=True)
        self.lut[cells] = win[first]

    def nearest(self, xy, radius: float):
        """Index of the nearest keypoint within `radius` px of each point, else -1."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        cx, cy = self.grid.cells(xy)
        best_i = np.full(len(xy), -1, np.int64)
        best_d = np.full(len(xy), np.inf)
        if not len(self.kpts):
            return best_i
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                nx, ny = cx + dx, cy + dy
                ok = (nx >= 0) & (nx < self.grid.gw) & (ny >= 0) & (ny < self.grid.gh)
                cand = np.where(ok, self.lut[np.clip(ny, 0, self.grid.gh - 1) * self.grid.gw
                                             + np.clip(nx, 0, self.grid.gw - 1)], -1)
                d = np.where(cand >= 0, np.linalg.norm(self.kpts[cand] - xy, axis=1), np.inf)
                closer = d < best_d
                best_i[closer], best_d[closer] = cand[closer], d[closer]
        best_i[best_d > radius] = -1
        return best_i


def one_to_one(i0, i1, scores):
    """Keep, among index pairs, the best-scoring one per i0 and per i1; returns a mask."""
    keep = np.zeros(len(scores), bool)
    order = np.argsort(-np.asarray(scores), kind="stable")
    _, first0 = np.unique(i0[order], return_index=True)
    cand = order[np.sort(first0)]
    _, first1 = np.unique(i1[cand], return_index=True)
    keep[cand[first1]] = True
    return keep


def assign_pair(match, index0, index1, radius0, radius1, n0, min_score=0.0):
    """Pass 2 for one pair: (matches0 N0 int32, -1 = none; matching_scores0 N0 float32)."""
    match = finite_matches(match)
    keep = match["scores"] > min_score
    kp0, kp1, s = (match[k][keep] for k in ("keypoints0", "keypoints1", "scores"))
    i0, i1 = index0.nearest(kp0, radius0), index1.nearest(kp1, radius1)
    ok = (i0 >= 0) & (i1 >= 0)
    i0, i1, s = i0[ok], i1[ok], s[ok]
    best = one_to_one(i0, i1, s)
    matches0 = np.full(n0, -1, np.int32)
    scores0 = np.zeros(n0, np.float32)
    matches0[i0[best]], scores0[i0[best]] = i1[best], s[best]
    return matches0, scores0


class Tracks:
    """Union-find over all keypoints of all images (vectorized; parent[i] <= i always)."""

    def __init__(self, counts: dict):
        self.offset, total = {}, 0
        for name, n in counts.items():
            self.offset[name], total = total, total + n
        self.parent = np.arange(total, dtype=np.int64)

    def _find(self, x):
        while True:
            p = self.parent[x]
            if np.array_equal(p, x):
                return x
            self.parent[x] = self.parent[p]  # path halving
            x = self.parent[x]

    def add(self, name0, name1, matches0):
        idx = np.flatnonzero(matches0 >= 0)
        u, v = idx + self.offset[name0], matches0[idx].astype(np.int64) + self.offset[name1]
        while len(u):
            ru, rv = self._find(u), self._find(v)
            todo = ru != rv
            lo, hi = np.minimum(ru, rv)[todo], np.maximum(ru, rv)[todo]
            np.minimum.at(self.parent, hi, lo)
            u, v = u[todo], v[todo]

    def stats(self):
        """Number of tracks (>= 2 observations) and their mean length."""
        roots = self._find(np.arange(len(self.parent)))
        sizes = np.bincount(roots)
        sizes = sizes[sizes >= 2]
        return {"num_tracks": int(len(sizes)),
                "mean_track_length": float(sizes.mean()) if len(sizes) else 0.0}


def quantize(pairs, load_pair, sizes: dict, features_h5, matches_h5, conf=None,
             scales=None, fixed_keypoints=None, progress=True) -> dict:
    """Run both passes and write hloc-format groups into open h5 files.

    pairs: list of (name0, name1); load_pair(i) -> dict keypoints0 / keypoints1 (M x 2
    original pixels), scores (M) for pairs[i]; sizes: name -> (W, H); scales: name ->
    original pixels per unit (default 1); fixed_keypoints: name -> (K x 2, K scores) for
    images whose keypoints must not change (e.g. reference images of a localization).
    Returns statistics (keypoints and matches per image / pair, mean track length).
    """
    conf = merge_conf(default_conf, conf, "quantization")
    if conf["max_error"] > conf["cell_size"]:
        raise ValueError(f"max_error ({conf['max_error']}) must not exceed cell_size "
                         f"({conf['cell_size']})")
    scales, fixed = scales or {}, fixed_keypoints or {}
    by_image = defaultdict(list)
    for i, (n0, n1) in enumerate(pairs):
        by_image[n0].append((i, "keypoints0"))
        by_image[n1].append((i, "keypoints1"))
    counts = {}
    for name in tqdm(sorted(by_image), desc="quantize: keypoints", unit="img",
                     disable=not progress, mininterval=1.0):
        if name in fixed:
            kpts, votes = (np.asarray(a) for a in fixed[name])
        else:
            obs = ((m[side], m["scores"]) for m, side in
                   ((finite_matches(load_pair(i)), side) for i, side in by_image[name]))
            kpts, votes = choose_keypoints(
                obs, sizes[name], conf["cell_size"] * scales.get(name, 1.0), conf["max_kps"],
                conf["position"], conf["min_score"])
        write_features(features_h5, name, kpts, votes, sizes[name])
        counts[name] = len(kpts)
    tracks = Tracks(counts)
    cache, n_matches = OrderedDict(), []

    def index(name):
        if name not in cache:
            g = features_h5[name]
            cache[name] = KeypointIndex(g["keypoints"][()], g["scores"][()], sizes[name],
                                        conf["cell_size"] * scales.get(name, 1.0))
            if len(cache) > 64:  # bounded: a few hundred KB per image
                cache.popitem(last=False)
        cache.move_to_end(name)
        return cache[name]

    for i, (n0, n1) in enumerate(tqdm(pairs, desc="quantize: matches", unit="pair",
                                      disable=not progress, mininterval=1.0)):
        m0, s0 = assign_pair(load_pair(i), index(n0), index(n1),
                             conf["max_error"] * scales.get(n0, 1.0),
                             conf["max_error"] * scales.get(n1, 1.0), counts[n0], conf["min_score"])
        write_matches(matches_h5, n0, n1, m0, s0)
        tracks.add(n0, n1, m0)
        n_matches.append(int((m0 >= 0).sum()))
    stats = {"num_images": len(counts), "num_pairs": len(pairs),
             "mean_keypoints": float(np.mean(list(counts.values()))) if counts else 0.0,
             "mean_matches": float(np.mean(n_matches)) if n_matches else 0.0,
             **tracks.stats()}
    logger.info("quantized: %.0f keypoints/image, %.0f matches/pair, %d tracks, "
                "mean track length %.2f", stats["mean_keypoints"], stats["mean_matches"],
                stats["num_tracks"], stats["mean_track_length"])
    return stats
