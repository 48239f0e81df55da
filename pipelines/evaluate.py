"""`recon-match evaluate`: run the evaluation suites side by side with their baselines.

Writes OUT/results.json (suite -> dataset -> method -> metric, saved after every suite),
OUT/report.md with tables and plots, and prints every table. See
`recon_match.evaluation.suites` for what each suite measures.
"""

import logging
from pathlib import Path

from recon_match.evaluation.suites import SUITES, Context, run_suites
from recon_match.evaluation.suites.base import DEFAULT_DATA_ROOT, DEFAULT_SCENES_ROOT

logger = logging.getLogger("recon-match.evaluate")


def add_arguments(parser):
    parser.add_argument("--suite", nargs="+", default=["all"], choices=("all",) + SUITES,
                        metavar="NAME", help=f"suites to run: all (default) or any of {', '.join(SUITES)}")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="sample scenes only, fewer pairs and smaller sizes (< 5 minutes)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="matcher weights or training checkpoint (default: shipped weights)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="folder with scenes/, homography/, natural/ (default: ../shared/data)")
    parser.add_argument("--scenes-root", type=Path, default=DEFAULT_SCENES_ROOT,
                        help="folder of sample scenes NAME/{images,gt} (default: sample_scenes)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the suites already done in OUT/results.json")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA if available)")


def run(args) -> int:
    import pycolmap
    if not args.verbose:
        pycolmap.logging.minloglevel = 1  # COLMAP's INFO lines drown the tables
    if args.weights is not None and not args.weights.is_file():
        raise FileNotFoundError(f"weights not found: {args.weights}")
    for name, root in (("data root", args.data_root), ("scenes root", args.scenes_root)):
        if root is not None and not root.is_dir():
            logger.warning("%s %s does not exist; suites that need it are skipped", name, root)
    ctx = Context(out=args.out, data_root=args.data_root, scenes_root=args.scenes_root,
                  quick=args.quick, weights=args.weights, device=args.device, resume=args.resume)
    doc = run_suites(ctx, args.suite)
    failed = [s for s, st in doc["status"].items() if st["status"] == "failed"]
    print(f"wrote {args.out / 'results.json'} and {args.out / 'report.md'}")
    if failed:
        logger.error("suites failed: %s (see the log above and results.json)", ", ".join(failed))
        return 1
    return 0
