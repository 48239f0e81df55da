"""`recon-match synth --preview N --out DIR`: look at the synthetic training mixture."""

import json
import logging
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument("--preview", type=int, default=8, metavar="N", help="number of pairs to draw")
    parser.add_argument("--out", type=Path, required=True, help="output folder for preview.png")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument("--photos", type=Path, default=None,
                        help="photo folder with train/ val/ test/ (default: procedural images only)")
    parser.add_argument("--generator", default=None,
                        help="only this generator (default: the mixture's weights)")
    parser.add_argument("--style-prob", type=float, default=None, help="override style probability")
    parser.add_argument("--include-held-out", action="store_true",
                        help="allow the held-out style families (as validation sets do)")


def run(args) -> int:
    from recon_match.data import MixtureDataset
    from recon_match.data.preview import contact_sheet
    from recon_match.fileio import atomic_path

    if args.preview < 1:
        raise ValueError("--preview must be at least 1")
    conf = {"size": tuple(args.size), "seed": args.seed, "split": args.split,
            "photo_root": str(args.photos) if args.photos else None,
            "include_held_out": args.include_held_out}
    if args.generator:
        conf["weights"] = {args.generator: 1.0}
    if args.style_prob is not None:
        conf["style_prob"] = args.style_prob
    ds = MixtureDataset(conf)
    pairs = [ds.sample(i) for i in tqdm(range(args.preview), desc="synth", unit="pair")]
    path = contact_sheet(pairs, Path(args.out) / "preview.png", seed=args.seed)
    summary = [{"index": i, "generator": p["generator"], "style": p["style"], "source": p["source"],
                "valid0": round(float(p["valid0"].mean()), 3)} for i, p in enumerate(pairs)]
    with atomic_path(Path(args.out) / "preview.json") as tmp:
        tmp.write_text(json.dumps({"conf": ds.conf, "pairs": summary}, indent=1))
    logger.info("wrote %s (%d pairs)", path, len(pairs))
    return 0
