"""Writing rendered scenes to disk (images, COLMAP text ground truth, depth) and the
render-on-first-use cache of the bundled sample scenes."""

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .cameras import camera_centre, rotmat_to_qvec
from .shading import render_view

logger = logging.getLogger(__name__)

RENDER_VERSION = 4  # bump when the renderer's output changes, so caches re-render
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "sample_scenes"
JPEG_QUALITY = 92
FILM_DIAGONAL_MM = 43.2666  # of 36 x 24 mm film: COLMAP converts FocalLengthIn35mmFilm with it


def camera_exif(K, width, height) -> Image.Exif:
    """EXIF of a rendered view as a camera writes it: make, model and the 35 mm-equivalent
    focal length, from which COLMAP/pycolmap take their focal prior (f = 500 px at 640 x 480
    -> 27 mm -> 499.2 px; without it they guess 1.2 * 640 = 768 px)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "recon-match", "sample-scene renderer"
    exif.get_ifd(0x8769)[0xA405] = int(round(K[0, 0] * FILM_DIAGONAL_MM / np.hypot(width, height)))
    return exif


def write_colmap_text(out_dir, views, width, height):
    """Write cameras.txt / images.txt / points3D.txt (empty) for `views` = [(name, K, T)].

    K is in the pixel-centre convention; COLMAP's principal point is 0.5 px larger.
    One PINHOLE camera per distinct K. Image ids follow the order of `views`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cams, cam_lines, img_lines = {}, [], []
    for i, (name, K, T) in enumerate(views, start=1):
        params = (K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5)
        if params not in cams:
            cams[params] = len(cams) + 1
            cam_lines.append(f"{cams[params]} PINHOLE {width} {height} "
                             + " ".join(f"{p:.10g}" for p in params))
        q = rotmat_to_qvec(T[:3, :3])
        vals = " ".join(f"{x:.15g}" for x in (*q, *T[:3, 3]))
        img_lines.append(f"{i} {vals} {cams[params]} {name}\n\n")
    (out_dir / "cameras.txt").write_text(
        "# CAMERA_ID MODEL WIDTH HEIGHT PARAMS[] (PINHOLE fx fy cx cy); rendered ground truth\n"
        + "\n".join(cam_lines) + "\n")
    (out_dir / "images.txt").write_text(
        "# IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME (world-to-camera); rendered ground truth\n"
        "# POINTS2D[] lines are empty\n" + "".join(img_lines))
    (out_dir / "points3D.txt").write_text("# POINT3D_ID X Y Z R G B ERROR TRACK[]\n")


def render_views(scene, views, out_dir, width, height, *, images="images", gt="gt",
                 depth="depth", seed=0, supersample=1, desc="render"):
    """Render `views` into out_dir/{images,gt,depth}; returns seconds per view."""
    out_dir = Path(out_dir)
    for sub in (images, depth):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i, (name, K, T) in enumerate(tqdm(views, desc=desc, unit="view", leave=False)):
        img, dep = render_view(scene, K, T, height, width, supersample=supersample,
                               noise_seed=seed * 100003 + i)
        Image.fromarray(img).save(out_dir / images / name, quality=JPEG_QUALITY,
                                  exif=camera_exif(K, width, height))
        np.save(out_dir / depth / f"{Path(name).stem}.npy", dep)
    write_colmap_text(out_dir / gt, views, width, height)
    return (time.perf_counter() - start) / max(len(views), 1)


def write_gps_csv(path, views, rng, sigma):
    """name,x,y,z: camera centres (metres, world frame) plus Gaussian noise of `sigma`."""
    lines = ["name,x,y,z"]
    for name, _, T in views:
        c = camera_centre(T) + rng.normal(0, sigma, 3)
        lines.append(f"{name},{c[0]:.3f},{c[1]:.3f},{c[2]:.3f}")
    Path(path).write_text("\n".join(lines) + "\n")


def sample_scene_names():
    from .layouts import SAMPLE_SCENES
    return sorted(SAMPLE_SCENES)


def ensure_sample_scene(name, root=None, force=False, seed=0):
    """Path of sample scene `name` under `root` (default `<repo>/sample_scenes`), rendered
    first if missing, stale (older renderer version) or `force`d.

    Rendering goes to a temporary sibling folder that is renamed into place when complete,
    so an interrupted render never leaves a half scene and concurrent callers are safe.
    """
    from .layouts import SAMPLE_SCENES
    if name not in SAMPLE_SCENES:
        raise ValueError(f"unknown sample scene {name!r}; choose from {sorted(SAMPLE_SCENES)}")
    root = Path(root) if root is not None else DEFAULT_ROOT
    final = root / name
    if not force and _is_current(final, seed):
        return final
    tmp = root / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    logger.info("rendering sample scene %r into %s", name, final)
    try:
        stats = SAMPLE_SCENES[name](tmp, seed)
        meta = {"name": name, "seed": seed, "version": RENDER_VERSION, **stats}
        (tmp / "scene.json").write_text(json.dumps(meta, indent=1) + "\n")
        if force or not _is_current(final, seed):  # else a concurrent caller finished first
            _swap_into_place(tmp, final, seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _is_current(folder, seed):
    try:
        meta = json.loads((Path(folder) / "scene.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == RENDER_VERSION and meta.get("seed") == seed


def _swap_into_place(tmp, final, seed):
    if final.exists():
        trash = final.with_name(f".{final.name}.old{os.getpid()}")
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(tmp, final)
    except OSError:  # another process put an equivalent scene there first
        if not _is_current(final, seed):
            raise
