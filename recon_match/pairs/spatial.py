"""Positions (and viewing directions) for spatial pair selection: EXIF GPS, a CSV, or a
pose prior from a COLMAP model; and k-nearest pairs from them."""

import csv
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from .select import topk_by_similarity

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_378_137.0
_GPS_IFD = 0x8825


def latlon_to_local(lat, lon, alt=None) -> np.ndarray:
    """WGS-84 degrees -> N x 3 local metres (east, north, up) around the mean position.

    An equirectangular approximation: exact to well below GPS noise over a few km.
    """
    lat, lon = np.radians(np.asarray(lat, np.float64)), np.radians(np.asarray(lon, np.float64))
    alt = np.zeros_like(lat) if alt is None else np.asarray(alt, np.float64)
    lat0, lon0 = lat.mean(), lon.mean()
    east = (lon - lon0) * np.cos(lat0) * EARTH_RADIUS_M
    north = (lat - lat0) * EARTH_RADIUS_M
    return np.stack([east, north, alt - alt.mean()], -1)


def _dms(value, ref) -> float:
    d, m, s = (float(v) for v in value)
    deg = d + m / 60 + s / 3600
    return -deg if str(ref).upper() in ("S", "W") else deg


def read_exif_gps(path):
    """(lat, lon, alt) in degrees/metres from an image's EXIF, or None without GPS."""
    try:
        with Image.open(path) as im:
            gps = im.getexif().get_ifd(_GPS_IFD)
        lat, lon = _dms(gps[2], gps.get(1, "N")), _dms(gps[4], gps.get(3, "E"))
        alt = float(gps.get(6, 0.0)) * (-1 if gps.get(5, b"\x00") in (1, b"\x01") else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OSError):
        return None
    return lat, lon, alt


def positions_from_exif(image_dir, names):
    """N x 3 local metres for `names` from EXIF GPS; raises naming the first image without."""
    geo = []
    for n in names:
        g = read_exif_gps(Path(image_dir) / n)
        if g is None:
            raise ValueError(f"{Path(image_dir) / n}: no GPS position in EXIF "
                             f"(use --gps-csv or another pairing method)")
        geo.append(g)
    geo = np.array(geo)
    return latlon_to_local(geo[:, 0], geo[:, 1], geo[:, 2])


def positions_from_csv(path, names):
    """N x 3 positions from a CSV: columns name,x,y,z (metres) or
    filename/name,latitude,longitude[,altitude...] (degrees; converted to local metres)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty positions file")
    header = [h.strip().lower() for h in rows[0]]
    geo = "latitude" in header or "lat" in header
    has_header = geo or header[:1] in (["name"], ["filename"])
    if geo:
        ci = [header.index(_find(header, ("latitude", "lat"), path)),
              header.index(_find(header, ("longitude", "lon"), path)),
              next((header.index(c) for c in header if c.startswith(("alt", "gps_alt"))), None)]
    else:
        ci = [1, 2, 3]
    table = {}
    for lineno, row in enumerate(rows[1:] if has_header else rows, 2 if has_header else 1):
        if not row:
            continue
        try:
            table[row[0].strip()] = [float(row[c]) if c is not None else 0.0 for c in ci]
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{lineno}: cannot parse a position from {row}") from None
    missing = [n for n in names if n not in table and Path(n).name not in table]
    if missing:
        raise ValueError(f"{path}: no position for {len(missing)} images, e.g. {missing[0]!r}")
    xyz = np.array([table.get(n, table.get(Path(n).name)) for n in names], np.float64)
    return latlon_to_local(xyz[:, 0], xyz[:, 1], xyz[:, 2]) if geo else xyz


def _find(header, options, path):
    for o in options:
        if o in header:
            return o
    raise ValueError(f"{path}: no column among {options}")


def poses_from_model(reconstruction, names):
    """(N x 3 centres, N x 3 viewing directions) from a pycolmap.Reconstruction prior."""
    by_name = {im.name: im for im in reconstruction.images.values()}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"pose prior has no image {missing[0]!r} ({len(missing)} missing)")
    centres, dirs = [], []
    for n in names:
        T = by_name[n].cam_from_world()
        R = np.asarray(T.rotation.matrix())
        centres.append(-R.T @ np.asarray(T.translation))
        dirs.append(R.T @ np.array([0.0, 0.0, 1.0]))
    return np.array(centres), np.array(dirs)


def spatial(names, positions, num: int, directions=None, max_angle: float = 90.0):
    """Pairs of each image with its `num` nearest neighbours by position.

    With `directions` (N x 3 unit viewing directions), partners looking more than
    `max_angle` degrees away are excluded, as they rarely see the same surface.
    """
    p = np.nan_to_num(np.asarray(positions, np.float64))
    if len(p) != len(names):
        raise ValueError(f"{len(p)} positions for {len(names)} images")
    d = None if directions is None else np.asarray(directions, np.float64)
    cos_min = np.cos(np.radians(max_angle))

    def sim_rows(i0, i1):
        dist = np.linalg.norm(p[i0:i1, None] - p[None], axis=-1)
        sim = -dist
        if d is not None:
            sim[(d[i0:i1] @ d.T) < cos_min] = -np.inf
        return sim

    yield from topk_by_similarity(sim_rows, names, num)
