"""A reference map from known camera poses: COLMAP SIFT features + exhaustive matching,
then `pycolmap.triangulate_points` with the poses held fixed.

Used by the localization benchmark and tests: with ground-truth poses the map carries no
SfM error, so what is measured is the localizer alone (and the map is in the GT frame).
"""

import logging
import os
import shutil
from pathlib import Path

import pycolmap

logger = logging.getLogger(__name__)


def posed_subset(rec: pycolmap.Reconstruction, names) -> pycolmap.Reconstruction:
    """A new reconstruction with the cameras and poses of `names` from `rec`, no points.

    Cameras and images are renumbered 1..n: COLMAP's database gives each camera a rig with
    the next free id, and triangulation needs rig ids to equal the camera ids.
    """
    out = pycolmap.Reconstruction()
    by_name = {im.name: im for im in rec.images.values()}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"no pose for {len(missing)} images (e.g. {missing[0]})")
    images = [by_name[n] for n in sorted(names)]
    cam_ids = {}
    for im in images:
        if im.camera_id not in cam_ids:
            cam_ids[im.camera_id] = len(cam_ids) + 1
            c = rec.cameras[im.camera_id]
            out.add_camera_with_trivial_rig(pycolmap.Camera(
                model=c.model, width=c.width, height=c.height, params=c.params,
                camera_id=cam_ids[im.camera_id]))
    for i, im in enumerate(images, 1):
        new = pycolmap.Image(name=im.name, camera_id=cam_ids[im.camera_id], image_id=i)
        out.add_image_with_trivial_frame(new, im.cam_from_world())
    return out


def triangulate_known_poses(rec: pycolmap.Reconstruction, names, image_dir, work_dir,
                            max_image_size: int = 1600, num_threads: int = 2) -> pycolmap.Reconstruction:
    """Triangulate a SIFT map of `names` at the poses and intrinsics given by `rec`.

    Writes `work_dir/database.db` and `work_dir/model/`; returns the model (reused when
    `work_dir/model` already exists).
    """
    work_dir = Path(work_dir)
    model_dir = work_dir / "model"
    if (model_dir / "points3D.bin").is_file():
        return pycolmap.Reconstruction(str(model_dir))
    ref = posed_subset(rec, names)
    work_dir.mkdir(parents=True, exist_ok=True)
    level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = max(level, 1)  # COLMAP logs every image at INFO level
    try:
        out = _triangulate(ref, names, image_dir, work_dir, max_image_size, num_threads)
    finally:
        pycolmap.logging.minloglevel = level
    logger.info("triangulated %d points over %d images (mean track length %.2f)",
                out.num_points3D(), out.num_reg_images(), out.compute_mean_track_length())
    return out


def _triangulate(ref, names, image_dir, work_dir, max_image_size, num_threads):
    db_path = work_dir / "database.db"
    db_path.unlink(missing_ok=True)  # a partial database from an interrupted run
    with pycolmap.Database.open(str(db_path)) as db:
        for cam in ref.cameras.values():
            db.write_camera(cam, use_camera_id=True)
        for im in ref.images.values():
            db.write_image(pycolmap.Image(name=im.name, camera_id=im.camera_id, image_id=im.image_id),
                           use_image_id=True)
    ext = pycolmap.FeatureExtractionOptions()
    ext.max_image_size = max_image_size
    ext.num_threads = num_threads
    pycolmap.extract_features(str(db_path), str(image_dir), image_names=sorted(names),
                              extraction_options=ext, device=pycolmap.Device.cpu)
    match = pycolmap.FeatureMatchingOptions()
    match.num_threads = num_threads
    pycolmap.match_exhaustive(str(db_path), matching_options=match, device=pycolmap.Device.cpu)
    # written beside, renamed when complete: an interrupted run never leaves a model to reuse
    tmp, model_dir = work_dir / "model.tmp", work_dir / "model"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    opts = pycolmap.IncrementalPipelineOptions(num_threads=num_threads)
    out = pycolmap.triangulate_points(ref, str(db_path), str(image_dir), str(tmp), options=opts)
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)
    return out
