"""hloc-format h5 files: features.h5 (one group per image) and matches.h5 (one per pair).

Layouts, exactly as hloc reads them (`hloc.utils.io.get_keypoints` / `get_matches`):
- features.h5: group `name` with `keypoints` (N x 2 float32, pixel-centre coordinates of the
  original image), `scores` (N float32) and `image_size` ([W, H] int32).
- matches.h5: group `names_to_pair(name0, name1)` with `matches0` (N0 int32, -1 = none) and
  `matching_scores0` (N0 float16).

A group is written under a temporary name and moved to its final name once all of its
datasets exist, so a reader never sees a half-written group. A file that HDF5 cannot open is
reported as corrupt with its path (never silently recreated).
"""

import contextlib
import logging
from pathlib import Path

import h5py
import numpy as np

from .fileio import safe_name

logger = logging.getLogger(__name__)

_TMP_GROUP = "__partial__"


class H5Error(ValueError):
    """An h5 file that cannot be used; the message names the file and the problem."""


def names_to_pair(name0: str, name1: str, separator: str = "/") -> str:
    """hloc's pair key: '/' inside each name becomes '-', the two names joined by `separator`."""
    return separator.join((name0.replace("/", "-"), name1.replace("/", "-")))


@contextlib.contextmanager
def open_h5(path, mode: str = "r"):
    """`h5py.File` with an error naming `path` when it is missing or corrupt."""
    path = Path(path)
    if mode == "r" and not path.is_file():
        raise FileNotFoundError(f"{path}: no such h5 file")
    try:
        f = h5py.File(path, mode)
    except OSError as e:
        raise H5Error(f"{path}: corrupt or not an HDF5 file ({e}); delete it and rerun") from e
    try:
        yield f
    finally:
        f.close()


def write_group(f: h5py.File, key: str, data: dict, attrs: dict | None = None, overwrite=True):
    """Write `data` (name -> array) as group `key`, complete or not at all.

    The datasets go into a scratch group first, which is then moved (a single link
    operation) to `key`; an existing `key` is replaced only when `overwrite`.
    """
    if key in f:
        if not overwrite:
            return
        del f[key]
    if _TMP_GROUP in f:
        del f[_TMP_GROUP]
    g = f.create_group(_TMP_GROUP)
    for name, value in data.items():
        g.create_dataset(name, data=value)
    for name, value in (attrs or {}).items():
        g.attrs[name] = value
    parent = key.rsplit("/", 1)[0] if "/" in key else None
    if parent and parent not in f:
        f.create_group(parent)
    f.move(_TMP_GROUP, key)


def write_features(f: h5py.File, name: str, keypoints, scores, image_size):
    """Write one image's keypoints (N x 2 float32), scores (N) and image_size (W, H)."""
    safe_name(name, "image name")
    write_group(f, name, {
        "keypoints": np.asarray(keypoints, np.float32).reshape(-1, 2),
        "scores": np.asarray(scores, np.float32).reshape(-1),
        "image_size": np.asarray(image_size, np.int32).reshape(2),
    })


def write_matches(f: h5py.File, name0: str, name1: str, matches0, scores0):
    """Write one pair's matches0 (N0 int32, -1 = none) and matching_scores0 (N0 float16)."""
    write_group(f, names_to_pair(name0, name1), {
        "matches0": np.asarray(matches0, np.int32).reshape(-1),
        "matching_scores0": np.asarray(scores0, np.float16).reshape(-1),
    })


def read_keypoints(path, name: str) -> np.ndarray:
    """N x 2 float32 keypoints of `name` in features.h5 `path`; errors name file and image."""
    with open_h5(path) as f:
        if name not in f or "keypoints" not in f[name]:
            raise H5Error(f"{path}: no keypoints for image {name!r}")
        return f[name]["keypoints"][()]


def read_matches(path, name0: str, name1: str) -> tuple[np.ndarray, np.ndarray]:
    """(M x 2 int indices, M scores) for a pair, looked up in either order as hloc does."""
    with open_h5(path) as f:
        key, reverse = names_to_pair(name0, name1), False
        if key not in f:
            key, reverse = names_to_pair(name1, name0), True
            if key not in f:
                raise H5Error(f"{path}: no matches for pair ({name0}, {name1})")
        m0 = f[key]["matches0"][()]
        s0 = f[key]["matching_scores0"][()]
    idx = np.flatnonzero(m0 != -1)
    matches = np.stack([idx, m0[idx]], -1)
    return (matches[:, ::-1] if reverse else matches), s0[idx].astype(np.float32)


def list_groups(f: h5py.File, depth: int) -> list[str]:
    """Names of groups holding datasets at `depth` levels (1: images, 2: pairs)."""
    names = []
    for k0, g0 in f.items():
        if k0 == _TMP_GROUP or not isinstance(g0, h5py.Group):
            continue
        if depth == 1:
            names.append(k0)
        else:
            names.extend(f"{k0}/{k1}" for k1, g1 in g0.items() if isinstance(g1, h5py.Group))
    return names
