"""stats.json: what a reconstruction achieved, with ground-truth errors when available."""

import json
import math
from pathlib import Path

from ..fileio import atomic_path

STATS_KEYS = ("images", "registered", "points3D", "mean_track_length",
              "mean_reprojection_error", "seconds")


def reconstruction_stats(rec, num_images: int, seconds: float, timings=None) -> dict:
    """JSON-ready summary of `rec` (None = nothing reconstructed) over `num_images` inputs.

    `timings`: optional {stage: seconds}, recorded as given.
    """
    empty = rec is None or rec.num_reg_images() == 0
    stats = {
        "images": int(num_images),
        "registered": 0 if empty else int(rec.num_reg_images()),
        "points3D": 0 if empty else int(rec.num_points3D()),
        "mean_track_length": 0.0 if empty else _finite(rec.compute_mean_track_length()),
        "mean_reprojection_error": 0.0 if empty else _finite(rec.compute_mean_reprojection_error()),
        "seconds": round(float(seconds), 2),
    }
    if timings:
        stats["timings"] = {k: round(float(v), 2) for k, v in timings.items()}
    return stats


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def write_stats(path, stats: dict) -> None:
    """Write `stats` as JSON atomically (NaN/Inf are not JSON: they must already be None)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(stats, indent=2, allow_nan=False) + "\n")


def read_stats(path) -> dict:
    return json.loads(Path(path).read_text())
