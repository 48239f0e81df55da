"""`recon-match match IMAGES --pairs P --out DIR [--batch-size B] [--max-kps N] [--resize N]`

Writes DIR/features.h5 and DIR/matches.h5 in hloc's layout (raw matches for resuming in
DIR/matches-raw/); rerunning after an interruption resumes.
"""

from pathlib import Path

from recon_match import matching


def add_arguments(parser):
    parser.add_argument("images", type=Path, help="image folder")
    parser.add_argument("--pairs", type=Path, required=True, help="pairs file (hloc format)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--conf", choices=sorted(matching.confs), default="recon-dense")
    parser.add_argument("--batch-size", type=int, help="pairs per forward pass")
    parser.add_argument("--max-kps", type=int, default=8192, help="keypoints per image (0: no cap)")
    parser.add_argument("--resize", type=int, help="network long side (multiple of 16)")
    parser.add_argument("--num-matches", type=int, help="matches sampled per pair")
    parser.add_argument("--no-refine", action="store_true",
                        help="skip the full-resolution NCC refinement")
    parser.add_argument("--weights", type=Path, help="matcher weights (default: shipped)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--rotation-search", action="store_true",
                        help="pairs with few matches are matched again with the second image turned by "
                             "90/180/270 degrees (drone strips that reverse heading)")
    parser.add_argument("--overwrite", action="store_true", help="recompute everything")


def run(args) -> int:
    conf = dict(matching.confs[args.conf])
    for key, value in [("batch_size", args.batch_size), ("resize", args.resize),
                       ("num_matches", args.num_matches), ("device", args.device),
                       ("weights", str(args.weights) if args.weights else None)]:
        if value is not None:
            conf[key] = value
    if args.no_refine:
        conf["refine"] = False
    if args.rotation_search:
        conf["rotation_search_below"] = matching.ROTATION_SEARCH_BELOW
    matching.main(conf, args.pairs, args.images, args.out,
                  features=args.out / "features.h5", matches=args.out / "matches.h5",
                  max_kps=args.max_kps or None, overwrite=args.overwrite)
    return 0
