"""`recon-match viz MODEL_DIR`: look at a reconstruction.

With a display and no output option: an interactive Open3D window. `--png FILE` renders the
same view headless; `--ply FILE` exports the points (FILE) and the cameras as lines
(FILE_cameras.ply). Without a display and without --png/--ply, the picture is rendered to
MODEL_DIR/reconstruction.png and the reason is logged. `--queries POSES` adds localized query
cameras (hloc/COLMAP poses.txt: `name qw qx qy qz tx ty tz`, world-to-camera) in blue.
"""

import logging
from pathlib import Path

from recon_match.evaluation.gt import load_model
from recon_match.viz import export, render, scene3d

logger = logging.getLogger("recon-match.viz")

# Where a model may sit inside the folder given: COLMAP's and our sfm's layouts.
MODEL_SUBDIRS = ("", "model", "sparse/0", "0")


def add_arguments(parser) -> None:
    parser.add_argument("model_dir", type=Path, help="COLMAP model folder (text or binary), or "
                        "a folder holding one in model/, sparse/0/ or 0/")
    parser.add_argument("--png", type=Path, help="render headless to this PNG file")
    parser.add_argument("--ply", type=Path, help="export points to this .ply file and the "
                        "cameras as lines to NAME_cameras.ply beside it")
    parser.add_argument("--queries", type=Path, help="poses.txt of extra cameras to draw "
                        "(name qw qx qy qz tx ty tz, world-to-camera)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=(1280, 960),
                        help="picture or window size in pixels (default 1280 960)")
    parser.add_argument("--frustum-scale", type=float, default=None,
                        help="camera frustum depth in model units (default: automatic)")


def find_model(path: Path) -> Path:
    """The COLMAP model folder at or inside `path`."""
    for sub in MODEL_SUBDIRS:
        d = path / sub
        if any((d / f"cameras.{ext}").is_file() for ext in ("bin", "txt")):
            return d
    raise FileNotFoundError(f"{path}: no COLMAP model (cameras.bin/.txt) here or in "
                            f"{', '.join(s + '/' for s in MODEL_SUBDIRS if s)}")


def run(args) -> int:
    if args.ply is not None and args.ply.suffix.lower() != ".ply":
        raise ValueError(f"--ply {args.ply}: the file name must end in .ply")
    if min(args.size) < 16 or max(args.size) > 8192:
        raise ValueError(f"--size {args.size[0]} {args.size[1]}: each side must be 16..8192 px")
    model_dir = find_model(args.model_dir)
    rec = load_model(model_dir)
    queries = scene3d.read_poses(args.queries) if args.queries else None
    scene = scene3d.scene_from_reconstruction(rec, queries, {"frustum_scale": args.frustum_scale})
    logger.info("%s: %d points, %d cameras%s", model_dir, len(scene.points), len(scene.centers),
                f" (incl. {len(queries)} queries)" if queries else "")
    if len(scene.centers) == 0 and len(scene.points) == 0:
        raise ValueError(f"{model_dir}: the model is empty (no registered images, no points)")
    conf = {"size": tuple(args.size)}
    png = args.png
    if args.ply:
        export.export_scene(scene, args.ply)
    if png is None and args.ply is None:
        if render.has_display():
            return _show(scene, conf)
        png = model_dir / "reconstruction.png"
        logger.info("no display (DISPLAY/WAYLAND_DISPLAY unset), so no window: rendering the "
                    "view to %s instead (choose the file with --png, export with --ply)", png)
    if png is not None:
        _guard_open3d(lambda: render.render_scene(scene, png, conf=conf))
        logger.info("wrote %s", png)
    return 0


def _show(scene, conf) -> int:
    _guard_open3d(lambda: render.show_scene(scene, conf=conf, title="recon-match viz"))
    return 0


def _guard_open3d(fn):
    """Turn a missing open3d into a clean command-line error with the install hint."""
    try:
        return fn()
    except ImportError as e:
        raise RuntimeError(str(e)) from e
