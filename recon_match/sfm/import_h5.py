"""Import hloc-format features.h5 / matches.h5 into a COLMAP database, then verify.

Keypoints are stored in pixel-centre coordinates (hloc's convention) and get COLMAP's +0.5
on import. Names from the h5 files and pairs file are checked with `safe_name`; arrays with
NaN/Inf or out-of-range indices are rejected with the file and image/pair named.
"""

import logging
from pathlib import Path

import numpy as np
import pycolmap
from tqdm import tqdm

from ..coords import to_colmap
from ..fileio import safe_name
from ..h5io import H5Error, names_to_pair, open_h5
from ..pairs import read_pairs

logger = logging.getLogger(__name__)


def read_image_sizes(features, names) -> dict:
    """{name: (W, H)} from features.h5 `image_size` where stored."""
    sizes = {}
    with open_h5(features) as f:
        for n in names:
            if n in f and "image_size" in f[n]:
                sizes[n] = tuple(int(v) for v in f[n]["image_size"][()])
    return sizes


def import_features(db: pycolmap.Database, image_ids: dict, features) -> dict:
    """Write every image's keypoints (+0.5); returns {name: number of keypoints}."""
    counts = {}
    with open_h5(features) as f:
        for name, image_id in tqdm(image_ids.items(), desc="importing keypoints", unit="img"):
            safe_name(name, "image name")
            if name not in f or "keypoints" not in f[name]:
                raise H5Error(f"{features}: no keypoints for image {name!r}")
            kpts = np.asarray(f[name]["keypoints"][()], dtype=np.float64)
            if kpts.ndim != 2 or kpts.shape[1] != 2:
                raise H5Error(f"{features}: keypoints of {name!r} have shape {kpts.shape}, "
                              "expected N x 2")
            if not np.isfinite(kpts).all():
                raise H5Error(f"{features}: keypoints of {name!r} contain NaN or Inf")
            db.write_keypoints(image_id, to_colmap(kpts).astype(np.float32))
            counts[name] = len(kpts)
    return counts


def _pair_matches(f, path, n0, n1, num0, num1) -> np.ndarray:
    """M x 2 uint32 matches of (n0, n1), looked up in either order; checked against counts."""
    key, reverse = names_to_pair(n0, n1), False
    if key not in f:
        key, reverse = names_to_pair(n1, n0), True
        if key not in f:
            raise H5Error(f"{path}: no matches for pair ({n0}, {n1})")
    if "matches0" not in f[key]:
        raise H5Error(f"{path}: pair {key!r} has no 'matches0'")
    m0 = np.asarray(f[key]["matches0"][()]).astype(np.int64).reshape(-1)
    if reverse:
        num0, num1 = num1, num0
    if len(m0) != num0:
        raise H5Error(f"{path}: pair {key!r}: matches0 has {len(m0)} entries but its first "
                      f"image has {num0} keypoints")
    idx = np.flatnonzero(m0 != -1)
    if len(idx) and (m0[idx].min() < 0 or m0[idx].max() >= num1):
        raise H5Error(f"{path}: pair {key!r}: match indices outside [0, {num1})")
    matches = np.stack([idx, m0[idx]], -1)
    return (matches[:, ::-1] if reverse else matches).astype(np.uint32)


def import_matches(db: pycolmap.Database, image_ids: dict, num_kpts: dict, pairs, matches) -> list:
    """Write raw matches for every pair; returns the pairs with at least one match."""
    written = []
    with open_h5(matches) as f:
        for n0, n1 in tqdm(pairs, desc="importing matches", unit="pair"):
            m = _pair_matches(f, matches, n0, n1, num_kpts[n0], num_kpts[n1])
            if len(m) == 0:  # nothing to verify; COLMAP needs no record of it
                continue
            db.write_matches(image_ids[n0], image_ids[n1], m)
            written.append((n0, n1))
    return written


def import_h5(db_path, image_ids: dict, features, matches, pairs_path) -> list:
    """Import keypoints and raw matches of the pairs in `pairs_path`; returns the pairs that
    have matches (the ones to verify)."""
    pairs = read_pairs(pairs_path, names=list(image_ids))
    with pycolmap.Database.open(Path(db_path)) as db:
        num_kpts = import_features(db, image_ids, features)
        written = import_matches(db, image_ids, num_kpts, pairs, matches)
    logger.info("imported %d images, %d of %d pairs with matches", len(image_ids),
                len(written), len(pairs))
    return written


def verify(db_path, pairs, max_error=4.0, min_num_inliers=15, seed=0) -> int:
    """Geometric verification of `pairs` with COLMAP's two-view geometry (RANSAC; essential
    matrix when both cameras have a focal prior, else fundamental/homography), written to the
    database; returns the number of verified pairs. `max_error`: RANSAC threshold in pixels;
    `seed`: RANSAC seed (None: random).

    Done pair by pair in Python rather than with `pycolmap.verify_matches`, whose pairs text
    file cannot hold names with spaces.
    """
    opts = pycolmap.TwoViewGeometryOptions(min_num_inliers=min_num_inliers)
    opts.ransac.max_error = max_error
    opts.ransac.random_seed = -1 if seed is None else int(seed)
    verified = 0
    with pycolmap.Database.open(Path(db_path)) as db:
        images = {im.name: im for im in db.read_all_images()}
        cameras = {c.camera_id: c for c in db.read_all_cameras()}
        for n0, n1 in tqdm(pairs, desc="geometric verification", unit="pair"):
            i0, i1 = images[n0], images[n1]
            # read per pair (a fast SQLite blob read) so memory stays flat with many images
            k0, k1 = (db.read_keypoints(i.image_id)[:, :2].astype(np.float64) for i in (i0, i1))
            geometry = pycolmap.estimate_two_view_geometry(
                cameras[i0.camera_id], k0, cameras[i1.camera_id], k1,
                db.read_matches(i0.image_id, i1.image_id), opts)
            db.write_two_view_geometry(i0.image_id, i1.image_id, geometry)
            verified += len(geometry.inlier_matches) >= min_num_inliers
    logger.info("%d of %d pairs verified", verified, len(pairs))
    return verified
