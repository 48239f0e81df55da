"""Pair selection from image order, global descriptors or an existing reconstruction.

Every selector yields (name0, name1) with each unordered pair at most once, so callers can
stream them to a file without an all-pairs structure in memory.
"""

import numpy as np


def exhaustive(names):
    """All pairs (i < j), streamed."""
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            yield names[i], names[j]


def sequential(names, window: int = 5, quadratic: bool = True, loops=None):
    """Neighbours within `window` in capture order (video, UAV strips).

    `quadratic` adds COLMAP's quadratic overlap (i + 2^k for k >= log2(window)), which
    links distant parts of long strips cheaply; `loops` is an optional iterable of extra
    (name0, name1) loop-closure pairs (e.g. from `retrieval(..., exclude=window)`).
    """
    seen = set()

    def emit(i, j):
        key = (min(i, j), max(i, j))
        if i != j and key not in seen:
            seen.add(key)
            return True
        return False

    n = len(names)
    for i in range(n):
        for j in range(i + 1, min(i + window + 1, n)):
            if emit(i, j):
                yield names[i], names[j]
        step = 1 << max(window.bit_length(), 1)
        while quadratic and i + step < n:
            if emit(i, i + step):
                yield names[i], names[i + step]
            step <<= 1
    index = {nm: k for k, nm in enumerate(names)}
    for n0, n1 in loops or ():
        if emit(index[n0], index[n1]):
            yield n0, n1


def topk_by_similarity(sim_rows, names, num: int, exclude: int = 0, block: int = 256):
    """Top-`num` partners per image from a row-block similarity function, deduplicated.

    `sim_rows(i0, i1)` returns the (i1 - i0) x N similarity of images i0..i1 to all images;
    working in row blocks keeps memory at block x N. Partners within `exclude` positions in
    image order are skipped (they are covered by a sequential window).
    """
    n, seen = len(names), set()
    for i0 in range(0, n, block):
        sim = np.array(sim_rows(i0, min(i0 + block, n)), dtype=np.float64, copy=True)
        rows = np.arange(i0, i0 + len(sim))
        cols = np.arange(n)
        sim[np.abs(rows[:, None] - cols[None]) <= exclude] = -np.inf
        sim[~np.isfinite(sim)] = -np.inf
        k = min(num, n - 1)
        if k <= 0:
            return
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        for r, i in enumerate(rows):
            for j in top[r]:
                key = (min(i, j), max(i, j))
                if np.isfinite(sim[r, j]) and key not in seen:
                    seen.add(key)
                    yield names[key[0]], names[key[1]]


def retrieval(names, descriptors, num: int, exclude: int = 0):
    """Top-`num` pairs per image by cosine similarity of global descriptors (N x D)."""
    d = np.asarray(descriptors, np.float32)
    if len(d) != len(names):
        raise ValueError(f"{len(d)} descriptors for {len(names)} images")
    d = np.nan_to_num(d)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    yield from topk_by_similarity(lambda a, b: d[a:b] @ d.T, names, num, exclude)


def covisibility(reconstruction, num: int, names=None):
    """Top-`num` partners per registered image by number of shared 3D points.

    `reconstruction` is a pycolmap.Reconstruction; only images listed in `names` (when
    given) are paired.
    """
    images = {iid: im for iid, im in reconstruction.images.items()
              if names is None or im.name in set(names)}
    seen = set()
    for iid, im in sorted(images.items(), key=lambda kv: kv[1].name):
        counts = {}
        for p2d in im.points2D:
            if not p2d.has_point3D():
                continue
            for el in reconstruction.points3D[p2d.point3D_id].track.elements:
                if el.image_id != iid and el.image_id in images:
                    counts[el.image_id] = counts.get(el.image_id, 0) + 1
        best = sorted(counts.items(), key=lambda kv: (-kv[1], images[kv[0]].name))[:num]
        for jid, _ in best:
            n0, n1 = sorted((im.name, images[jid].name))
            if (n0, n1) not in seen:
                seen.add((n0, n1))
                yield n0, n1
