"""Propagation of nearby-frame labels into wide-baseline labels (GIM).

Every keypoint of every verified nearby pair is an observation (frame, x, y). Observations of
the same frame within `radius` px are the same scene point (SIFT points repeat exactly; a
dense match lands within a pixel of a grid point), and a match links its two observations.
The connected components of that graph are tracks. A track that holds two different points
of one frame (spread > `radius`) has drifted or jumped between surfaces and is dropped whole.
Two distant frames that share tracks get those as correspondences, which are verified again
with a fundamental matrix, because small errors add up along a chain.
"""

import numpy as np

from ..config import merge_conf
from .label import verify

default_conf = {
    "radius": 1.0,       # px: observations of one frame closer than this are one point
    "min_gap": 10,       # propagated pairs are min_gap..max_gap frames apart
    "max_gap": 40,
    "gap_step": 5,
    "epipolar_px": 1.0,  # re-verification of each propagated pair
    "min_matches": 30,
}


def connected_components(num, edges):
    """Component label (the smallest member index) of each of `num` nodes; edges E x 2."""
    parent = np.arange(num)
    if len(edges) == 0:
        return parent
    a, b = edges[:, 0], edges[:, 1]
    while True:
        pa, pb = parent[a], parent[b]
        diff = pa != pb
        if not diff.any():
            return parent
        # hook the larger root under the smaller, then flatten the trees (pointer jumping)
        np.minimum.at(parent, np.maximum(pa, pb)[diff], np.minimum(pa, pb)[diff])
        while True:
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt


def close_pairs(xy, radius):
    """Index pairs E x 2 of points (N x 2) closer than `radius`, by a sweep along x."""
    order = np.argsort(xy[:, 0], kind="stable")
    s = xy[order]
    out = []
    for k in range(1, len(s)):
        near = (s[k:, 0] - s[:-k, 0]) < radius
        if not near.any():
            break
        i = np.nonzero(near)[0]
        ok = np.hypot(*(s[i + k] - s[i]).T) < radius
        out.append(np.stack([order[i[ok]], order[i[ok] + k]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def _observations(pair_labels):
    """Flatten pair labels -> (frame N, xy N x 2, conf N, match edges E x 2)."""
    frames, xys, confs, edges, base = [], [], [], [], 0
    for (i, j), lab in sorted(pair_labels.items()):
        n = len(lab["kp0"])
        frames += [np.full(n, i), np.full(n, j)]
        xys += [lab["kp0"], lab["kp1"]]
        confs += [lab["conf"], lab["conf"]]
        edges.append(np.stack([base + np.arange(n), base + n + np.arange(n)], 1))
        base += 2 * n
    if base == 0:
        return np.zeros(0, np.int64), np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 2), np.int64)
    return (np.concatenate(frames), np.concatenate(xys).astype(np.float64),
            np.concatenate(confs), np.concatenate(edges))


def build_tracks(pair_labels, radius):
    """Tracks from nearby-pair labels -> dict of arrays, one row per (track, frame):
    `track`, `frame`, `xy` (mean of the observations, px), `conf` (the track's weakest match).
    Tracks with a conflicting frame (two points further apart than `radius`) are dropped."""
    frame, xy, conf, edges = _observations(pair_labels)
    merge = [np.nonzero(frame == f)[0][close_pairs(xy[frame == f], radius)] for f in np.unique(frame)]
    comp = connected_components(len(frame), np.concatenate([edges, *merge]) if merge else edges)
    # one row per (track, frame)
    nf = int(frame.max(initial=0)) + 1
    key = comp.astype(np.int64) * nf + frame
    uniq, inv = np.unique(key, return_inverse=True)
    cnt = np.bincount(inv).astype(np.float64)
    mean = np.stack([np.bincount(inv, xy[:, d]) / cnt for d in (0, 1)], 1)
    spread = np.zeros(len(uniq))
    np.maximum.at(spread, inv, np.hypot(*(xy - mean[inv]).T))
    track = comp[_first_index(inv, len(uniq))]
    tconf = np.ones(len(frame))
    np.minimum.at(tconf, comp, conf)
    bad = np.zeros(len(frame), bool)
    bad[track[spread > radius]] = True
    keep = ~bad[track]
    rows = {"track": track, "frame": uniq % nf, "xy": mean.astype(np.float32),
            "conf": tconf[track].astype(np.float32)}
    return {k: v[keep] for k, v in rows.items()}


def _first_index(inv, n):
    """For each group 0..n-1 of `inv`, the index of one of its members."""
    first = np.empty(n, np.int64)
    first[inv] = np.arange(len(inv))
    return first


def pair_from_tracks(tracks, a, b):
    """Correspondences between frames a and b shared by tracks -> labels dict."""
    ia = np.nonzero(tracks["frame"] == a)[0]
    ib = np.nonzero(tracks["frame"] == b)[0]
    _, ka, kb = np.intersect1d(tracks["track"][ia], tracks["track"][ib], return_indices=True)
    ia, ib = ia[ka], ib[kb]
    return {"kp0": tracks["xy"][ia], "kp1": tracks["xy"][ib], "conf": tracks["conf"][ia]}


def distant_pairs(num_frames, conf):
    return [(a, a + g) for a in range(num_frames)
            for g in range(conf["min_gap"], conf["max_gap"] + 1, conf["gap_step"]) if a + g < num_frames]


def propagate(pair_labels, num_frames, conf=None):
    """Nearby-pair labels {(i, j): labels} -> verified distant-pair labels {(a, b): labels}."""
    conf = merge_conf(default_conf, conf, "propagate")
    tracks = build_tracks(pair_labels, conf["radius"])
    out = {}
    for a, b in distant_pairs(num_frames, conf):
        lab = pair_from_tracks(tracks, a, b)
        if len(lab["kp0"]) < conf["min_matches"]:
            continue
        lab, _ = verify(lab, conf["epipolar_px"], conf["min_matches"])
        if len(lab["kp0"]):
            out[(a, b)] = lab
    return out
