"""Localization benchmark CLI: our dense matcher vs OpenCV SIFT, same maps, same pose solver.

The benchmark itself lives in `recon_match.localization.benchmark` (also used by
`recon-match evaluate --suite localization`). Prints the table and writes DIR/localization.json.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from recon_match.fileio import atomic_path
from recon_match.localization.benchmark import (METHODS, ROOT, SHARED_SCENES, STYLES, format_table,
                                                 run_localization_suite)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_localization")
    p.add_argument("--scenes", type=Path, default=SHARED_SCENES)
    p.add_argument("--num-pairs", type=int, default=None, help="default: the localizer's (10)")
    p.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    from recon_match.model import load_matcher
    results = run_localization_suite(args.out, args.scenes, args.methods, args.styles,
                                     args.num_pairs, args.quick, net=load_matcher(args.weights))
    with atomic_path(args.out / "localization.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
