"""COLMAP's own SIFT pipeline (the baseline): extraction + exhaustive matching + verification."""

import logging
import time
from pathlib import Path

import pycolmap

from ..config import merge_conf as _merge
from .colmap import camera_spec as format_camera, infer_camera, resolve_camera_mode

logger = logging.getLogger(__name__)

default_conf = {
    "max_image_size": 3200,   # COLMAP's default: larger images are downscaled for extraction
    "max_num_features": 8192,
    "num_threads": 2,
}

_MODES = {"single": pycolmap.CameraMode.SINGLE, "per-image": pycolmap.CameraMode.PER_IMAGE}


def merge_conf(conf=None) -> dict:
    """`default_conf` updated by `conf`; unknown keys are errors."""
    return _merge(default_conf, conf, "SIFT")


def extract_and_match(db_path, image_dir, names, conf=None, camera_mode="auto",
                      camera_model="SIMPLE_RADIAL", seed=0, camera_spec=None) -> None:
    """Fill a new database at `db_path` with SIFT features and verified exhaustive matches.

    Cameras are set up by COLMAP itself (EXIF focal prior, else 1.2 * max(W, H)), shared or
    per image as `camera_mode` says. 'auto' is resolved here as for imported matches (shared
    when every image has the same size and EXIF prior, EXIF or not); COLMAP's own AUTO would
    give same-size images without EXIF one camera each, a much weaker model.
    Runs on the CPU with `conf['num_threads']` threads; images larger than
    `conf['max_image_size']` are downscaled for extraction (keypoints stay in full-size pixels).
    `seed`: RANSAC seed of the verification (None: random). `camera_spec`: "MODEL,params"
    known intrinsics of every image.
    """
    conf = merge_conf(conf)
    cameras = [infer_camera(Path(image_dir) / n, camera_model, spec=camera_spec) for n in names]
    camera_mode = resolve_camera_mode(cameras, camera_mode)
    reader = pycolmap.ImageReaderOptions(camera_model=camera_model)
    if camera_spec:
        reader.camera_model, reader.camera_params = format_camera(cameras[0]).split(",", 1)
    db_path = Path(db_path)
    t0 = time.time()
    logger.info("SIFT extraction on %d images (max size %d px, %d features, camera mode %s)...",
                len(names), conf["max_image_size"], conf["max_num_features"], camera_mode)
    extraction = pycolmap.FeatureExtractionOptions(num_threads=conf["num_threads"],
                                                   max_image_size=conf["max_image_size"])
    extraction.sift.max_num_features = conf["max_num_features"]
    pycolmap.extract_features(
        db_path, Path(image_dir), image_names=list(names), camera_mode=_MODES[camera_mode],
        reader_options=reader,
        extraction_options=extraction, device=pycolmap.Device.cpu)
    _check_extracted(db_path, names)
    logger.info("SIFT extraction done in %.1f s; exhaustive matching of %d pairs...",
                time.time() - t0, len(names) * (len(names) - 1) // 2)
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = -1 if seed is None else int(seed)
    pycolmap.match_exhaustive(db_path, matching_options=pycolmap.FeatureMatchingOptions(
        num_threads=conf["num_threads"]), verification_options=verification,
        device=pycolmap.Device.cpu)
    with pycolmap.Database.open(db_path) as db:
        logger.info("SIFT matching done in %.1f s: %d verified pairs", time.time() - t0,
                    db.num_verified_image_pairs())


def _check_extracted(db_path, names) -> None:
    """COLMAP skips images it cannot read; say which, and stop if none were read."""
    with pycolmap.Database.open(db_path) as db:
        done = {im.name for im in db.read_all_images()
                if db.exists_keypoints(im.image_id) and db.num_keypoints_for_image(im.image_id)}
    missing = [n for n in names if n not in done]
    if len(missing) == len(names):
        raise ValueError(f"SIFT found no features in any image ({len(names)} images)")
    if missing:
        logger.warning("no SIFT features for %d images (unreadable or textureless): %s",
                       len(missing), ", ".join(missing[:10]))
