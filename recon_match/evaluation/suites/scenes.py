"""Scenes suite: dense SfM (`recon-match sfm`'s stages) vs COLMAP's SIFT on the same images.

Every folder with images (NAME/images or NAME/mapping) under the sample scenes and
data_root/scenes is reconstructed twice through `recon_match.sfm.reconstruct`: from our
dense matches (pairs -> `recon_match.matching` -> import + verification -> mapping) and
from COLMAP's own SIFT extraction and exhaustive matching (dense pairs: `pairing`). With NAME/gt, the relative pose
AUC@1/3/5/10 degrees over all image pairs (unregistered = failure) and the median rotation
error after alignment come from `recon_match.evaluation.evaluate`.

Cameras: EXIF focal priors where the photos have them; a scene without any (Middlebury,
Strecha) is reconstructed with the calibration its dataset ships (the GT camera), as a
photogrammetrist with a calibrated camera would (`recon-match sfm --camera`), by both methods.
"""

import logging
import time

from ... import matching
from ... import pairs as pair_selection
from ...imageio import list_images
from ...pairs.spatial import read_exif_gps
from ...sfm import read_stats, reconstruct
from ...sfm.colmap import camera_spec, infer_camera
from ..gt import load_model
from .base import COLMAP_SIFT, OURS, SuiteSkipped, image_dir, scene_folders

logger = logging.getLogger(__name__)

COLUMNS = ["registered", "images", "auc@1", "auc@3", "auc@5", "auc@10", "median_rot_deg",
           "points3D", "track_length", "seconds", "error"]
PLOT = (["auc@5"], "pose AUC@5° (%)")

default_conf = {
    # without EXIF GPS on every image, scenes up to this size are matched exhaustively, as
    # COLMAP users do (dino, 16 views: AUC@5 10-18 with retrieval over mapper seeds, 20-21
    # exhaustive), larger ones by retrieval
    "exhaustive_max": 20,
    "num_pairs": 8,             # GPS / retrieval pairs per image
    "quick_max_images": 6,      # quick mode: the first images of each sample scene
    "dense": {},                # matching options (recon_match.matching.default_conf)
    "max_kps": 8192,
    "sift": {"max_image_size": 1600},  # the Strecha photos are 3072 px wide
    "dataset_calibration": True,  # scenes without EXIF focal: the GT camera as known intrinsics
}


def _metrics(stats: dict) -> dict:
    gt = stats.get("gt") or {}
    auc = gt.get("auc", {})
    return {"registered": stats["registered"], "images": stats["images"],
            **{f"auc@{t}": auc.get(t) for t in ("1", "3", "5", "10")},
            "median_rot_deg": gt.get("median_rotation_error_deg"),
            "points3D": stats["points3D"], "track_length": stats["mean_track_length"],
            "reproj_error": stats["mean_reprojection_error"], "seconds": stats["seconds"]}


def pairing(images, names, conf) -> str:
    """GPS neighbours when every image has EXIF GPS (drone sets, as `recon-match sfm --pairs
    gps`), else exhaustive for small scenes, else retrieval."""
    if all(read_exif_gps(images / n) for n in names):
        return "gps"
    return "exhaustive" if len(names) <= conf["exhaustive_max"] else "retrieval"


def calibration(images, names, gt) -> str | None:
    """"MODEL,params" of the scene's GT camera (all GT cameras equal) when no image has an
    EXIF focal, else None."""
    if gt is None or any(infer_camera(images / n).has_prior_focal_length for n in names):
        return None
    specs = {camera_spec(c) for c in load_model(gt).cameras.values()}
    return specs.pop() if len(specs) == 1 else None


def run_dense(ctx, images, names, gt, out, conf) -> dict:
    t0 = time.time()
    method = pairing(images, names, conf)
    pairs = pair_selection.main(images, out / "pairs.txt", method=method,
                                num_pairs=conf["num_pairs"], image_list=names, model=ctx.model)
    t1 = time.time()
    dense = {**conf["dense"], "rotation_search_below": matching.auto_rotation_search(method)}
    features, matches = matching.main(dense, pairs, images, out, model=ctx.model,
                                      max_kps=conf["max_kps"], overwrite=not ctx.resume)
    timings = {"pairs": t1 - t0, "matching": time.time() - t1}
    reconstruct(images, out, features, matches, pairs, conf={"camera": conf["camera"]}, gt=gt,
                image_list=names, timings=timings, overwrite=not ctx.resume)
    return _metrics(read_stats(out / "stats.json"))


def run_sift(ctx, images, names, gt, out, conf) -> dict:
    reconstruct(images, out, conf={"sift": conf["sift"], "camera": conf["camera"]}, gt=gt,
                image_list=names, overwrite=not ctx.resume)
    return _metrics(read_stats(out / "stats.json"))


def run(ctx, conf=None) -> dict:
    conf = {**default_conf, **(conf or {})}
    scenes = scene_folders(ctx, need_gt=False)
    if not scenes:
        raise SuiteSkipped(f"no scene folders with images under {ctx.scenes_root}"
                           + ("" if ctx.quick else f" or {ctx.data_root}/scenes"))
    results = {}
    for name, folder, _ in scenes:
        images = image_dir(folder)
        names = list_images(images)
        if ctx.quick:
            names = names[:conf["quick_max_images"]]
        gt = folder / "gt" if (folder / "gt").is_dir() else None
        camera = calibration(images, names, gt) if conf["dataset_calibration"] else None
        if camera:
            logger.info("scenes %s: no EXIF focal; the dataset's calibration %s for both methods", name, camera)
        results[name] = {}
        for method, fn in ((OURS, run_dense), (COLMAP_SIFT, run_sift)):
            logger.info("scenes %s: %s on %d images", name, method, len(names))
            try:
                results[name][method] = fn(ctx, images, names, gt, ctx.work("scenes") / name / method,
                                           {**conf, "camera": camera})
            except (RuntimeError, ValueError) as e:  # a failed reconstruction is a result too
                logger.warning("scenes %s: %s failed: %s", name, method, e)
                results[name][method] = {"registered": 0, "images": len(names), "error": str(e)}
    return results
