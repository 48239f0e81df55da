"""`recon-match pairs IMAGES --out pairs.txt --method ... --num-pairs K`"""

from pathlib import Path

from recon_match import pairs


def add_arguments(parser):
    parser.add_argument("images", type=Path, help="image folder")
    parser.add_argument("--out", type=Path, required=True, help="pairs file to write")
    parser.add_argument("--method", choices=pairs.METHODS, default="exhaustive")
    parser.add_argument("--num-pairs", type=int, default=20,
                        help="partners per image (retrieval, gps, pose, covisibility)")
    parser.add_argument("--window", type=int, default=5, help="sequential: neighbours each side")
    parser.add_argument("--num-loops", type=int, default=0,
                        help="sequential: loop closures per image from retrieval")
    parser.add_argument("--gps-csv", type=Path, help="positions CSV (name,x,y,z or "
                        "name,latitude,longitude[,altitude]); default: EXIF GPS")
    parser.add_argument("--prior-model", type=Path, help="COLMAP model for pose/covisibility")
    parser.add_argument("--max-angle", type=float, default=90.0,
                        help="pose: max angle between viewing directions (degrees)")
    parser.add_argument("--weights", type=Path, help="matcher weights for retrieval")
    parser.add_argument("--resize", type=int, default=320, help="retrieval: image long side")


def run(args) -> int:
    model = None
    if args.weights is not None:
        from recon_match.model import load_matcher
        model = load_matcher(args.weights)
    pairs.main(args.images, args.out, args.method, args.num_pairs, window=args.window,
               num_loops=args.num_loops, positions_csv=args.gps_csv,
               prior_model=args.prior_model, max_angle=args.max_angle, model=model,
               resize=args.resize)
    return 0
