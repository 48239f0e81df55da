"""`recon-match localize`: localize query images against a COLMAP/hloc reconstruction."""

from pathlib import Path


def add_arguments(parser):
    parser.add_argument("--model", required=True, type=Path,
                        help="SfM output folder or COLMAP model folder (recon-match sfm, hloc, COLMAP)")
    parser.add_argument("--queries", required=True, type=Path, help="folder of query images")
    parser.add_argument("--out", required=True, type=Path, help="output folder (poses.txt, log.json)")
    parser.add_argument("--images", type=Path, default=None,
                        help="reference images of the model (default: an images/ folder next to it)")
    parser.add_argument("--pairs", choices=["retrieval", "gps"], default="retrieval",
                        help="reference selection: our global descriptors, or GPS/EXIF positions")
    parser.add_argument("--num-pairs", type=int, default=10, help="references matched per query")
    parser.add_argument("--camera", default=None,
                        help="query intrinsics MODEL,PARAMS in COLMAP order, e.g. PINHOLE,500,500,320,240 "
                             "(default: EXIF focal, else a same-size camera of the model, else estimated)")
    parser.add_argument("--gps", type=Path, default=None,
                        help="CSV name,x,y,z (or with latitude/longitude header) for --pairs gps")
    parser.add_argument("--matcher", choices=["dense", "sift", "lift3d"], default="dense",
                        help="our dense matcher (default), the OpenCV SIFT baseline, or lift3d: the query "
                             "matched directly to 3D point descriptors lifted from the reference views")
    parser.add_argument("--weights", type=Path, default=None, help="matcher weights (default: shipped)")
    parser.add_argument("--overwrite", action="store_true", help="redo queries already in the log")


def run(args) -> int:
    from recon_match.localization import localizer
    from recon_match.localization.camera import parse_camera
    from recon_match.localization.refmap import find_model_dir

    if args.num_pairs < 1:
        raise ValueError(f"--num-pairs must be at least 1, got {args.num_pairs}")
    find_model_dir(args.model)  # missing model folder: clear error before loading the network
    if not args.queries.is_dir():
        raise FileNotFoundError(f"{args.queries}: query folder does not exist")
    if args.camera:
        parse_camera(args.camera, 100, 100)  # a bad string fails before any loading
    if args.gps is not None and not args.gps.is_file():
        raise FileNotFoundError(f"{args.gps}: no such GPS file")
    net = None
    if args.matcher != "sift" or args.pairs == "retrieval":
        from recon_match.model import load_matcher
        net = load_matcher(args.weights)
    conf = {"pairs": args.pairs, "num_pairs": args.num_pairs, "matcher": args.matcher}
    log = localizer.main(conf, args.model, args.queries, args.out, image_dir=args.images,
                         camera_spec=args.camera, gps=args.gps, net=net, overwrite=args.overwrite)
    done = sum(e["localized"] for e in log.values())
    print(f"localized {done} / {len(log)} queries -> {args.out / 'poses.txt'}")
    return 0
