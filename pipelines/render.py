"""`recon-match render`: render the bundled sample scenes (cached; --force re-renders)."""

import logging
import time
from pathlib import Path

logger = logging.getLogger("recon-match.render")


def add_arguments(parser):
    parser.add_argument("--scene", default="all", choices=["object", "aerial", "all"],
                        help="which sample scene to render (default: all)")
    parser.add_argument("--root", type=Path, default=None,
                        help="folder holding the scenes (default: <repo>/sample_scenes)")
    parser.add_argument("--force", action="store_true", help="re-render even if cached")


def run(args) -> int:
    from recon_match.render import ensure_sample_scene, sample_scene_names
    names = sample_scene_names() if args.scene == "all" else [args.scene]
    for name in names:
        start = time.perf_counter()
        path = ensure_sample_scene(name, root=args.root, force=args.force)
        logger.info("%s: %s (%.1f s)", name, path, time.perf_counter() - start)
    return 0
