"""Pair selection: which image pairs to match.

Methods (`main(..., method=...)`):
- `exhaustive`: all pairs (N (N-1) / 2).
- `sequential`: neighbours within `window` in name order plus quadratic jumps; with
  `num_loops` > 0, loop closures from global-descriptor retrieval outside the window.
- `retrieval`: top `num_pairs` per image by cosine of our network's global descriptors.
- `gps` / `spatial`: `num_pairs` nearest by position, from EXIF GPS or `positions_csv`
  (name,x,y,z in metres, or name,latitude,longitude[,altitude]).
- `pose`: `num_pairs` nearest by position among cameras looking within `max_angle`,
  from a prior COLMAP model (`prior_model`).
- `covisibility`: top `num_pairs` by shared 3D points in `prior_model`.
Output is hloc's pairs text format (read back with `read_pairs`).
"""

import logging
from pathlib import Path

from ..imageio import list_images
from . import select, spatial
from .io import read_pairs, write_pairs

logger = logging.getLogger(__name__)

METHODS = ("exhaustive", "sequential", "retrieval", "gps", "spatial", "pose", "covisibility")

__all__ = ["main", "read_pairs", "write_pairs", "METHODS", "select", "spatial"]


def _descriptors(model, image_dir, names, resize):
    from ..model import load_matcher  # the network is only needed for retrieval
    from .retrieval import global_descriptors
    model = model if model is not None else load_matcher()
    return global_descriptors(model.eval(), image_dir, names, resize=resize)


def _load_model(path):
    import pycolmap
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: prior model folder does not exist")
    try:
        return pycolmap.Reconstruction(str(path))
    except Exception as e:  # pycolmap raises generic errors for unreadable models
        raise ValueError(f"{path}: cannot read COLMAP model ({e})") from e


def generate(image_dir, names, method: str, num_pairs: int = 20, *, window: int = 5,
             num_loops: int = 0, positions_csv=None, prior_model=None, max_angle: float = 90.0,
             model=None, resize: int = 320):
    """Yield pairs of `names` (relative to `image_dir`) for `method`; see the module doc."""
    if method == "exhaustive":
        return select.exhaustive(names)
    if method == "sequential":
        loops = None
        if num_loops > 0:
            desc = _descriptors(model, image_dir, names, resize)
            loops = select.retrieval(names, desc, num_loops, exclude=window)
        return select.sequential(names, window=window, loops=loops)
    if method == "retrieval":
        return select.retrieval(names, _descriptors(model, image_dir, names, resize), num_pairs)
    if method in ("gps", "spatial"):
        pos = (spatial.positions_from_csv(positions_csv, names) if positions_csv
               else spatial.positions_from_exif(image_dir, names))
        return spatial.spatial(names, pos, num_pairs)
    if method in ("pose", "covisibility"):
        if prior_model is None:
            raise ValueError(f"method {method!r} needs prior_model (a COLMAP model folder)")
        rec = _load_model(prior_model)
        if method == "covisibility":
            return select.covisibility(rec, num_pairs, names)
        centres, dirs = spatial.poses_from_model(rec, names)
        return spatial.spatial(names, centres, num_pairs, directions=dirs, max_angle=max_angle)
    raise ValueError(f"unknown pairing method {method!r}; choose from {METHODS}")


def main(image_dir, output_pairs, method: str = "exhaustive", num_pairs: int = 20,
         image_list=None, **kwargs) -> Path:
    """Select pairs among the images of `image_dir` (or `image_list`) and write them to
    `output_pairs` in hloc's format; keyword arguments as in `generate`. Returns the path."""
    names = list(image_list) if image_list is not None else list_images(image_dir)
    if len(names) < 2:
        raise ValueError(f"{image_dir}: need at least 2 images to make pairs, found {len(names)}")
    n = write_pairs(output_pairs, generate(image_dir, names, method, num_pairs, **kwargs))
    if n == 0:
        raise ValueError(f"{method} pairing produced no pairs for {len(names)} images")
    logger.info("%s pairing: %d pairs for %d images", method, n, len(names))
    return Path(output_pairs)
