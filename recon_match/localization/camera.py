"""Intrinsics of a query image: given on the command line, from EXIF, borrowed from the map, or guessed.

All cameras are `pycolmap.Camera` objects in COLMAP's convention (principal point measured
from the image corner), sized to the image as `recon_match.imageio.read_image` returns it.
"""

import logging

import pycolmap

from ..sfm.colmap import DEFAULT_FOCAL_FACTOR, parse_camera

logger = logging.getLogger(__name__)


def default_camera(width: int, height: int) -> pycolmap.Camera:
    """SIMPLE_PINHOLE with COLMAP's default focal prior and a centred principal point."""
    f = DEFAULT_FOCAL_FACTOR * max(width, height)
    return pycolmap.Camera(model="SIMPLE_PINHOLE", width=width, height=height,
                           params=[f, width / 2, height / 2])


def exif_camera(path, width: int, height: int):
    """Camera with the EXIF focal length of `path`, or None when EXIF has none (or sizes differ)."""
    try:
        cam = pycolmap.infer_camera_from_image(str(path))
    except Exception as e:  # unreadable EXIF is not an error: we fall back to other sources
        logger.debug("no EXIF camera for %s: %s", path, e)
        return None
    if not cam.has_prior_focal_length or (cam.width, cam.height) != (width, height):
        return None  # no focal in EXIF, or EXIF orientation swapped the sides
    return pycolmap.Camera(model="SIMPLE_PINHOLE", width=width, height=height,
                           params=[cam.mean_focal_length(), width / 2, height / 2])


def query_camera(path, width: int, height: int, spec: str | None = None,
                 reference_cameras=()) -> tuple[pycolmap.Camera, str]:
    """Pick the intrinsics for one query and say where they came from.

    Order: `spec` ("given") > EXIF focal ("exif") > a reference camera of the same size
    ("reference") > default focal ("default", to be estimated by the pose solver).
    """
    if spec:
        return parse_camera(spec, width, height), "given"
    cam = exif_camera(path, width, height)
    if cam is not None:
        return cam, "exif"
    for ref in reference_cameras:
        if (ref.width, ref.height) == (width, height):
            return pycolmap.Camera(model=ref.model, width=width, height=height,
                                   params=ref.params), "reference"
    return default_camera(width, height), "default"
