"""Which reference images each query is matched to: global-descriptor retrieval or a GPS prior."""

import csv
import logging
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from ..fileio import atomic_path

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_378_137.0


def topk_cosine(query: np.ndarray, refs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` rows of `refs` (M x D) most cosine-similar to `query` (D), best first."""
    r = np.nan_to_num(np.asarray(refs, np.float64))
    q = np.nan_to_num(np.asarray(query, np.float64))
    r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    sim = r @ (q / max(np.linalg.norm(q), 1e-12))
    return np.argsort(-sim, kind="stable")[:k]


def topk_nearest(position: np.ndarray, refs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` rows of `refs` (M x 3) nearest to `position` (3), nearest first."""
    d = np.linalg.norm(np.asarray(refs, np.float64) - np.asarray(position, np.float64), axis=1)
    return np.argsort(d, kind="stable")[:k]


def reference_descriptors(names, describe, read, cache_path, signature: str) -> np.ndarray:
    """Global descriptors of the reference images (N x D), computed once and cached in h5.

    `describe(image) -> D` vector, `read(name) -> image`. The cache is keyed by image name and
    tagged with `signature` (the weights used); a different signature recomputes everything.
    """
    cache_path = Path(cache_path)
    cached = {}
    if cache_path.is_file():
        try:
            with h5py.File(cache_path, "r") as f:
                if f.attrs.get("signature") == signature:
                    cached = {n: f[n][()] for n in names if n in f}
        except OSError as e:  # a damaged cache is rebuilt, not fatal
            logger.warning("%s: unreadable descriptor cache, recomputing (%s)", cache_path, e)
    todo = [n for n in names if n not in cached]
    for n in todo:
        cached[n] = np.asarray(describe(read(n)), np.float32)
    if todo:
        with atomic_path(cache_path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["signature"] = signature
            for n, d in cached.items():
                f.create_dataset(n, data=d)
        logger.info("cached global descriptors of %d reference images in %s", len(cached), cache_path)
    return np.stack([cached[n] for n in names])


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_positions(path) -> dict[str, np.ndarray]:
    """Positions per image name from a CSV: `name,x,y,z` (metric, any frame), or with a header
    naming `latitude`/`longitude` (+ an altitude column) for geographic positions (converted to
    a local east-north-up frame in metres). A header line is optional for `name,x,y,z`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GPS file")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if not rows:
        raise ValueError(f"{path}: empty GPS file")
    header = None if all(_is_number(c) for c in rows[0][1:4]) else [c.strip().lower() for c in rows[0]]
    body = rows[1:] if header else rows
    cols = [1, 2, 3]
    geographic = bool(header and "latitude" in header and "longitude" in header)
    if geographic:
        alt = next((i for i, c in enumerate(header) if "alt" in c), None)
        cols = [header.index("latitude"), header.index("longitude"), alt]
    out = {}
    for lineno, r in enumerate(body, 2 if header else 1):
        try:
            out[r[0].strip()] = np.array([float(r[c]) if c is not None else 0.0 for c in cols])
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{lineno}: expected name and three numbers, got {r}") from None
    return to_local_metric(out) if geographic else out


def to_local_metric(latlonalt: dict, origin=None) -> dict[str, np.ndarray]:
    """(lat deg, lon deg, alt m) per name -> east/north/up metres around `origin` (default: mean)."""
    if not latlonalt:
        return {}
    arr = np.stack(list(latlonalt.values()))
    o = np.asarray(origin if origin is not None else arr.mean(0))
    lat, lon = np.radians(arr[:, 0]), np.radians(arr[:, 1])
    east = (lon - np.radians(o[1])) * np.cos(np.radians(o[0])) * EARTH_RADIUS_M
    north = (lat - np.radians(o[0])) * EARTH_RADIUS_M
    enu = np.stack([east, north, arr[:, 2] - o[2]], 1)
    return dict(zip(latlonalt, enu))


def exif_latlonalt(path):
    """(lat, lon, alt) in degrees/metres from the EXIF GPS block of `path`, or None."""
    try:
        with Image.open(path) as img:
            gps = img.getexif().get_ifd(0x8825)
    except Exception:  # no or broken EXIF: the caller falls back to other sources
        return None
    if 2 not in gps or 4 not in gps:
        return None

    def deg(v, ref):
        d = float(v[0]) + float(v[1]) / 60 + float(v[2]) / 3600
        return -d if ref in ("S", "W") else d

    alt = float(gps.get(6, 0.0)) * (-1 if gps.get(5) == 1 else 1)
    return deg(gps[2], gps.get(1, "N")), deg(gps[4], gps.get(3, "E")), alt


class RetrievalSelector:
    """Top-k references by cosine similarity of global descriptors (ours, from the matcher)."""

    def __init__(self, ref_names, ref_descriptors: np.ndarray):
        self.names, self.desc = list(ref_names), ref_descriptors

    def select(self, query_descriptor: np.ndarray, k: int) -> list[str]:
        return [self.names[i] for i in topk_cosine(query_descriptor, self.desc, k)]


class GpsSelector:
    """Top-k references nearest to the query's position.

    Reference positions come from the GPS CSV when it lists every reference, else from the
    references' EXIF GPS, else from the model's camera centres (then the CSV must be in the
    model's frame, e.g. a geo-registered model). Query positions: the CSV, else EXIF.
    """

    def __init__(self, refmap, image_dir, positions: dict | None = None):
        names = refmap.names
        self.names, self.positions, self.origin = names, positions or {}, None
        if positions and all(n in positions for n in names):
            self.ref_pos, self.frame = np.stack([positions[n] for n in names]), "csv"
        elif positions:
            self.ref_pos, self.frame = np.stack([refmap.center(n) for n in names]), "model"
            logger.info("GPS file does not list the references: using model camera centres "
                        "(the file's positions must be in the model's frame)")
        else:
            geo = {n: exif_latlonalt(Path(image_dir) / n) for n in names}
            if any(v is None for v in geo.values()):
                raise ValueError("--pairs gps needs positions: give --gps CSV (name,x,y,z) or "
                                 "reference images with EXIF GPS")
            self.origin = np.mean(np.array(list(geo.values())), 0)
            enu = to_local_metric(geo, self.origin)
            self.ref_pos, self.frame = np.stack([enu[n] for n in names]), "exif"

    def position(self, name: str, path) -> np.ndarray | None:
        if name in self.positions:
            return self.positions[name]
        if self.frame == "exif":
            geo = exif_latlonalt(path)
            if geo is not None:
                return to_local_metric({name: geo}, self.origin)[name]
        return None

    def select(self, name: str, path, k: int) -> list[str] | None:
        """Nearest `k` reference names, or None when the query has no position."""
        pos = self.position(name, path)
        if pos is None:
            return None
        return [self.names[i] for i in topk_nearest(pos, self.ref_pos, k)]
