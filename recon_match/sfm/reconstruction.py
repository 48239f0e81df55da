"""One call from images (+ optional hloc-format matches) to a model, PLY and stats.json.

Output folder layout: `database.db`, `model/` (COLMAP binary), `model.ply`, `stats.json`.
`stats.json` is written last and marks the folder complete: a rerun skips complete folders
unless `overwrite`. The database is built under a temporary name and renamed when its
matches are verified, so an interrupted run resumes at mapping.
"""

import logging
import os
import shutil
import time
from pathlib import Path

import pycolmap

from ..config import merge_conf as _merge
from ..evaluation import check_names, evaluate, load_model
from ..imageio import list_images
from . import colmap, import_h5, mapping, sift, track_refinement
from .stats import read_stats, reconstruction_stats, write_stats

logger = logging.getLogger(__name__)

default_conf = {
    "camera_mode": "auto",          # auto | single | per-image
    "camera_model": "SIMPLE_RADIAL",
    "camera": None,                 # "MODEL,params": known intrinsics of every image (calibrated camera)
    "mapper": "incremental",        # incremental | global
    "num_threads": 2,
    "ransac_max_error": 4.0,        # px, geometric verification of imported matches
    "seed": 0,                      # RANSAC and mapper seed (None: COLMAP's random seeding)
    "mapping_retries": 2,           # new mapper seeds unless most images register
    "sift": {},                     # overrides of sift.default_conf (SIFT path only)
    "track_refinement": {},         # overrides of track_refinement.default_conf (dense path)
}


def merge_conf(conf=None) -> dict:
    conf = _merge(default_conf, conf, "reconstruction")
    if conf["mapper"] not in mapping.MAPPERS:
        raise ValueError(f"unknown mapper {conf['mapper']!r}; choose from {mapping.MAPPERS}")
    if int(conf["mapping_retries"]) < 0:
        raise ValueError(f"mapping_retries must be >= 0, got {conf['mapping_retries']}")
    if conf["camera_mode"] not in colmap.CAMERA_MODES:
        raise ValueError(f"unknown camera mode {conf['camera_mode']!r}; "
                         f"choose from {colmap.CAMERA_MODES}")
    conf["sift"] = sift.merge_conf(conf["sift"])
    conf["track_refinement"] = track_refinement.merge_conf(conf["track_refinement"])
    if conf["camera"]:
        colmap.parse_camera(conf["camera"], 100, 100)  # a bad string fails before any work
    return conf


def is_complete(out_dir) -> bool:
    out_dir = Path(out_dir)
    return (out_dir / "stats.json").is_file() and (out_dir / "model").is_dir()


def load_ground_truth(gt, names):
    """GT model for `names`, checked before any expensive work; None when `gt` is None."""
    if gt is None:
        return None
    gt_rec = load_model(gt)
    check_names(gt_rec, names, gt_path=gt)
    return gt_rec


def build_database(db_path, image_dir, names, conf, features=None, matches=None, pairs=None):
    """Create `db_path` with verified matches: SIFT when `features` is None, else import."""
    db_path = Path(db_path)
    tmp = db_path.with_name(f".{db_path.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        if features is None:
            sift.extract_and_match(tmp, image_dir, names, conf["sift"],
                                   camera_mode=conf["camera_mode"],
                                   camera_model=conf["camera_model"], seed=conf["seed"],
                                   camera_spec=conf["camera"])
        else:
            sizes = import_h5.read_image_sizes(features, names)
            ids = colmap.create_database(tmp, image_dir, names, conf["camera_mode"],
                                         conf["camera_model"], sizes, conf["camera"])
            verified = import_h5.import_h5(tmp, ids, features, matches, pairs)
            import_h5.verify(tmp, verified, max_error=conf["ransac_max_error"], seed=conf["seed"])
        os.replace(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)
    return db_path


def reconstruct(image_dir, out_dir, features=None, matches=None, pairs=None, *, conf=None,
                gt=None, image_list=None, timings=None, overwrite=False) -> pycolmap.Reconstruction:
    """Reconstruct `image_dir` into `out_dir`; return the model (empty if nothing registered).

    features/matches/pairs: hloc-format features.h5, matches.h5 and pairs .txt to import;
    all None runs COLMAP's SIFT baseline. `gt`: a COLMAP model folder (text or binary) whose
    errors go into stats.json. `image_list`: names relative to `image_dir` (default: all
    images). `timings`: seconds of earlier stages (e.g. matching), added to stats `seconds`.
    """
    t0 = time.time()
    conf = merge_conf(conf)
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    names = list(image_list) if image_list is not None else list_images(image_dir)
    if len(names) < 2:
        raise ValueError(f"{image_dir}: need at least 2 images, found {len(names)}")
    if (features is None) != (matches is None) or (features is not None and pairs is None):
        raise ValueError("features, matches and pairs must be given together (or none for SIFT)")
    gt_rec = load_ground_truth(gt, names)
    if is_complete(out_dir) and not overwrite:
        logger.info("%s is complete; skipping (use overwrite to redo)", out_dir)
        if read_stats(out_dir / "stats.json")["registered"] == 0:
            return pycolmap.Reconstruction()
        return load_model(out_dir / "model")
    out_dir.mkdir(parents=True, exist_ok=True)
    # the completeness marker goes first: an interrupted overwrite must not look finished
    (out_dir / "stats.json").unlink(missing_ok=True)
    db_path = out_dir / "database.db"
    if overwrite or not db_path.exists():
        build_database(db_path, image_dir, names, conf, features, matches, pairs)
    else:
        logger.info("reusing verified matches in %s", db_path)
    rec, info = _map(db_path, image_dir, out_dir, conf, len(names))
    rec = rec or pycolmap.Reconstruction()
    refined = None
    if features is not None and conf["track_refinement"]["enabled"] and rec.num_points3D():
        refined = track_refinement.refine_tracks(rec, image_dir, conf["track_refinement"],
                                                 fixed_intrinsics=info["intrinsics_fixed"])
    mapping.write_model(rec, out_dir)
    timings = dict(timings or {})
    timings["reconstruction"] = time.time() - t0
    stats = reconstruction_stats(rec, len(names), sum(timings.values()), timings)
    # intrinsics held: calibrated, or after a degenerate first mapping; the seed and attempts
    # say which mapping retry gave the model
    stats.update(intrinsics_fixed=info["intrinsics_fixed"], mapping_seed=info["seed"],
                 mapping_attempts=info["attempts"])
    if refined is not None:
        stats["track_refinement"] = refined
    if gt_rec is not None:
        stats["gt"] = evaluate(rec, gt_rec, names)
    write_stats(out_dir / "stats.json", stats)
    _log_stats(stats, out_dir)
    return rec


def _map(db_path, image_dir, out_dir, conf, num_images):
    work = out_dir / f".mapping.tmp{os.getpid()}"
    try:
        return mapping.run_mapping(db_path, image_dir, work, conf["mapper"],
                                   num_threads=conf["num_threads"], num_images=num_images,
                                   seed=conf["seed"], fixed_intrinsics=bool(conf["camera"]),
                                   retries=conf["mapping_retries"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _log_stats(stats, out_dir):
    logger.info("%s: %d/%d images registered, %d points, track length %.2f, "
                "reprojection error %.2f px, %.1f s", out_dir, stats["registered"],
                stats["images"], stats["points3D"], stats["mean_track_length"] or 0,
                stats["mean_reprojection_error"] or 0, stats["seconds"])
    if "gt" in stats:
        g = stats["gt"]
        logger.info("vs ground truth: AUC@1/3/5/10 = %s %%, median rotation error %s deg, "
                    "median centre error %s", " / ".join(f"{v:.1f}" for v in g["auc"].values()),
                    _fmt(g["median_rotation_error_deg"]), _fmt(g["median_center_error"]))


def _fmt(x):
    return "n/a" if x is None else f"{x:.3g}"
