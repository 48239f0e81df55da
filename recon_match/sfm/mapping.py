"""Mapping with pycolmap (incremental or global) and atomic writing of the model."""

import logging
import os
import shutil
from pathlib import Path

import pycolmap
from tqdm import tqdm

from ..fileio import atomic_path

logger = logging.getLogger(__name__)

MAPPERS = ("incremental", "global")


def run_mapping(db_path, image_dir, work_dir, mapper="incremental", num_threads=2,
                num_images=None, seed=0, fixed_intrinsics=False, retries=2):
    """Map the verified matches in `db_path`; return (the largest model or None, info).

    `info`: `intrinsics_fixed` (whether the model's intrinsics were held), `seed` (of the kept
    attempt) and `attempts`. `work_dir` receives pycolmap's per-model folders (scratch).
    `seed`: fixed seed for repeatable runs (None: COLMAP seeds randomly).
    `fixed_intrinsics`: the cameras are calibrated; bundle adjustment keeps them as they are.
    Without it, a model with degenerate intrinsics is mapped again with the priors fixed.
    `retries`: unless most of the `num_images` register, map again with the next seeds (up
    to this many times) and keep the model with the most images: on a weakly connected
    scene one bad initial pair can strand the rest (sacre_coeur: 3/10 images with seed 0,
    10/10 with seeds 1, 2 and 3 on the same matches).
    """
    if mapper not in MAPPERS:
        raise ValueError(f"unknown mapper {mapper!r}; choose from {MAPPERS}")
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    args = (Path(db_path), Path(image_dir), Path(work_dir))
    best, info = None, {}
    for attempt in range(retries + 1):
        s = -1 if seed is None else int(seed) + attempt
        rec, fixed = _map_checked(args, mapper, num_threads, s, num_images, fixed_intrinsics)
        if attempt == 0 or _registered(rec) > _registered(best):
            best, info = rec, {"intrinsics_fixed": fixed, "seed": None if seed is None else s}
        info["attempts"] = attempt + 1
        if num_images is None or 2 * _registered(best) > num_images or attempt == retries:
            break
        logger.warning("only %d/%d images registered; mapping again with another seed "
                       "(attempt %d of %d)", _registered(best), num_images, attempt + 2, retries + 1)
    return best, info


def _map_checked(args, mapper, num_threads, seed, num_images, fixed_intrinsics):
    rec = _largest(_map(args, mapper, num_threads, seed, num_images, fixed_intrinsics))
    if rec is not None and not fixed_intrinsics and _bogus_intrinsics(rec):
        # a free focal length diverges when the first views are nearly planar or share a
        # centre (internet photos of one facade: sacre_coeur went to 6,000,000 px); COLMAP's
        # own filter spares the initial pair. The priors are the better start.
        logger.warning("mapping gave degenerate intrinsics (%s); mapping again with the "
                       "cameras' prior intrinsics fixed", _focals(rec))
        fixed = _largest(_map(args, mapper, num_threads, seed, num_images, True))
        if fixed is not None:
            return fixed, True
    return rec, fixed_intrinsics


def _map(args, mapper, num_threads, seed, num_images, fixed_intrinsics) -> dict:
    if mapper == "global":
        opts = pycolmap.GlobalPipelineOptions(num_threads=num_threads, random_seed=seed)
        if fixed_intrinsics:
            fix_intrinsics(opts.mapper.bundle_adjustment, "refine_")
        logger.info("global mapping (rotation averaging + global positioning)...")
        return pycolmap.global_mapping(*args, opts)
    opts = _incremental_options(num_threads, seed)
    if fixed_intrinsics:
        fix_intrinsics(opts, "ba_refine_")
    with tqdm(total=num_images, desc="registering images", unit="img") as bar:
        def new_model():  # each model attempt starts from an initial pair
            bar.reset(total=num_images)
            bar.update(2)
        return pycolmap.incremental_mapping(*args, opts, initial_image_pair_callback=new_model,
                                            next_image_callback=lambda: bar.update(1))


def _registered(rec) -> int:
    return 0 if rec is None else rec.num_reg_images()


def _largest(models: dict):
    if not models:
        logger.warning("mapping produced no model")
        return None
    sizes = {i: m.num_reg_images() for i, m in models.items()}
    best = max(sizes, key=sizes.get)
    logger.info("%d model(s) with %s registered images; keeping model %d", len(models),
                sorted(sizes.values(), reverse=True), best)
    return models[best]


def _bogus_intrinsics(rec) -> bool:
    """COLMAP's test for implausible cameras (focal outside 0.1-10x the image size, distortion
    above 1), on the cameras of registered images."""
    return any(rec.cameras[c].has_bogus_params(0.1, 10.0, 1.0) for c in _used_cameras(rec))


def _focals(rec) -> str:
    return ", ".join(f"{rec.cameras[c].mean_focal_length():.0f} px" for c in _used_cameras(rec))


def _used_cameras(rec) -> list:
    return sorted({rec.image(i).camera_id for i in rec.reg_image_ids()})


def _incremental_options(num_threads, seed):
    opts = pycolmap.IncrementalPipelineOptions(num_threads=num_threads, random_seed=seed)
    opts.mapper.random_seed = opts.triangulation.random_seed = seed
    return opts


def fix_intrinsics(opts, prefix):
    """Keep calibrated intrinsics out of bundle adjustment (`prefix`: "refine_" for
    BundleAdjustmentOptions, "ba_refine_" for the incremental mapper's options): with a long
    lens (near-orthographic views) focal length and depth trade off, and a free focal drifts
    (Middlebury dino: 3,310 px -> 10,649 / 6,928 px, every pose 7-10 degrees off)."""
    for name in ("focal_length", "principal_point", "extra_params"):
        setattr(opts, prefix + name, False)


def write_model(rec: pycolmap.Reconstruction, out_dir) -> tuple[Path, Path]:
    """Write `out_dir/model/` (COLMAP binary) and `out_dir/model.ply` atomically.

    The model is written into a temporary folder that replaces `model/` by renames, so a
    half-written model never sits under the final name.
    """
    out_dir = Path(out_dir)
    model_dir, ply = out_dir / "model", out_dir / "model.ply"
    tmp = out_dir / f".model.tmp{os.getpid()}"
    old = out_dir / f".model.old{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rec.write_binary(tmp)
        if model_dir.exists():
            os.replace(model_dir, old)
        os.replace(tmp, model_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    with atomic_path(ply) as tmp_ply:
        rec.export_PLY(tmp_ply)
    return model_dir, ply
