"""`recon-match sfm`: reconstruct a folder of images with the dense matcher or COLMAP's SIFT.

Dense: pairs -> dense matching (hloc-format h5) -> import + verification -> mapping.
SIFT: COLMAP's own extraction + exhaustive matching -> mapping. Both write OUT/database.db,
OUT/model/, OUT/model.ply and OUT/stats.json (with ground-truth errors when --gt is given).
"""

import logging
import time
from pathlib import Path

import pycolmap

from recon_match.imageio import list_images, readable_images
from recon_match.sfm import is_complete, read_stats, reconstruct
from recon_match.sfm.colmap import CAMERA_MODES
from recon_match.sfm.mapping import MAPPERS
from recon_match.sfm.reconstruction import load_ground_truth, merge_conf

logger = logging.getLogger("recon-match.sfm")

PAIRINGS = ("exhaustive", "sequential", "retrieval", "gps")


def add_arguments(parser):
    parser.add_argument("images", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--matcher", choices=("dense", "sift"), default="dense")
    parser.add_argument("--pairs", choices=PAIRINGS, default="exhaustive",
                        help="pair selection (dense matcher only; SIFT matches exhaustively)")
    parser.add_argument("--num-pairs", type=int, default=20, help="pairs per image (retrieval, gps)")
    parser.add_argument("--max-kps", type=int, default=None,
                        help="keypoints per image (dense: quantization cap; SIFT: max features)")
    parser.add_argument("--resize", type=int, default=None,
                        help="longest image side for matching (SIFT: max_image_size, default 3200)")
    parser.add_argument("--gt", type=Path, default=None,
                        help="ground-truth COLMAP model folder (text or binary) to evaluate against")
    parser.add_argument("--camera-mode", choices=CAMERA_MODES, default="auto",
                        help="one shared camera, one per image, or auto (shared if sizes and EXIF agree)")
    parser.add_argument("--camera-model", default="SIMPLE_RADIAL", help="COLMAP camera model")
    parser.add_argument("--camera", default=None, metavar="MODEL,PARAMS",
                        help="known intrinsics of every image, e.g. PINHOLE,fx,fy,cx,cy (a calibrated "
                             "camera; default: EXIF focal prior, else 1.2 x the longest side)")
    parser.add_argument("--mapper", choices=MAPPERS, default="incremental")
    parser.add_argument("--mapping-retries", type=int, default=2, metavar="N",
                        help="unless most images register, map again with up to N other seeds and "
                             "keep the largest model (a bad initial pair can strand the rest)")
    parser.add_argument("--rotation-search", choices=("auto", "on", "off"), default="auto",
                        help="dense: match pairs with few matches again with the second image turned by "
                             "90/180/270 degrees (drone strips reverse heading); auto = on unless --pairs "
                             "exhaustive (where most weak pairs do not overlap at all: 4x the cost for nothing)")
    parser.add_argument("--pair-gate", type=float, default=None, metavar="R",
                        help="dense: pairs with fewer confident matches than R x the smaller of their two "
                             "images' best pair get none (default 0: every pair is kept)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="dense matcher weights or training checkpoint (default: the shipped weights)")
    parser.add_argument("--overwrite", action="store_true", help="redo a complete output folder")
    parser.add_argument("--no-viz", action="store_true",
                        help="do not render OUT/reconstruction.png and OUT/report.md")


def _conf(args) -> dict:
    sift = {}
    if args.matcher == "sift":
        if args.pairs != "exhaustive":
            raise ValueError("the SIFT baseline matches exhaustively; drop --pairs")
        if args.resize:
            sift["max_image_size"] = args.resize
        if args.max_kps:
            sift["max_num_features"] = args.max_kps
    return merge_conf({"camera_mode": args.camera_mode, "camera_model": args.camera_model,
                       "camera": args.camera, "mapper": args.mapper,
                       "mapping_retries": args.mapping_retries, "sift": sift})


def dense_matches(args, names):
    """Pairs + dense matching into OUT; returns (features, matches, pairs, timings)."""
    try:
        from recon_match import matching, pairs
        from recon_match.model import load_matcher
    except ImportError as e:
        raise RuntimeError(f"the dense matcher is not available ({e}); use --matcher sift") from e
    model = load_matcher(args.weights)  # one network for retrieval pairs and matching
    t0 = time.time()
    pairs_path = pairs.main(args.images, args.out / "pairs.txt", method=args.pairs,
                            num_pairs=args.num_pairs, image_list=names, model=model)
    t1 = time.time()
    conf = {"resize": args.resize} if args.resize else {}
    if args.pair_gate is not None:
        conf["pair_gate"] = args.pair_gate
    conf["rotation_search_below"] = {"on": matching.ROTATION_SEARCH_BELOW, "off": 0,
                                     "auto": matching.auto_rotation_search(args.pairs)}[args.rotation_search]
    kwargs = {"max_kps": args.max_kps} if args.max_kps else {}
    features, matches = matching.main(conf, pairs_path, args.images, args.out,
                                      overwrite=args.overwrite, model=model, **kwargs)
    return features, matches, pairs_path, {"pairs": t1 - t0, "matching": time.time() - t1}


def run(args) -> int:
    if not args.verbose:
        pycolmap.logging.minloglevel = 1  # COLMAP's INFO lines drown our progress bars
    # one unreadable photo among hundreds is skipped with a warning, not a stop
    names = readable_images(args.images, list_images(args.images))
    load_ground_truth(args.gt, names)  # a mismatching GT or camera fails before any matching
    conf = _conf(args)
    if is_complete(args.out) and not args.overwrite:
        logger.info("%s already holds a complete reconstruction; use --overwrite to redo", args.out)
        return 0
    features = matches = pairs = timings = None
    if args.matcher == "dense":
        features, matches, pairs, timings = dense_matches(args, names)
    reconstruct(args.images, args.out, features, matches, pairs, conf=conf, gt=args.gt,
                image_list=names, timings=timings, overwrite=args.overwrite)
    stats = read_stats(args.out / "stats.json")
    if stats["registered"] == 0:
        raise RuntimeError(f"no images could be registered; see {args.out / 'database.db'}")
    if not args.no_viz:
        write_report(args.out, stats)
    return 0


def write_report(out: Path, stats: dict):
    """OUT/reconstruction.png (headless Open3D) and OUT/report.md with the stats."""
    from recon_match.viz.render import render_reconstruction
    from recon_match.viz.report import Report

    report = Report(out / "report.md", f"Reconstruction of {out.name}")
    try:
        render_reconstruction(pycolmap.Reconstruction(out / "model"), out / "reconstruction.png")
        report.image(out / "reconstruction.png", "points and cameras (red frustums)")
    except ImportError as e:  # open3d is an optional extra
        logger.warning("no picture: %s", e)
    rows = [{"metric": k, "value": v} for k, v in stats.items() if not isinstance(v, dict)]
    rows += [{"metric": f"AUC@{t}° (%)", "value": a} for t, a in stats.get("gt", {}).get("auc", {}).items()]
    report.table(rows).write()
    logger.info("wrote %s", out / "report.md")
