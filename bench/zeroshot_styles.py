"""Zero-shot cross-modality: homography success per style family, ours vs OpenCV SIFT.

Pure-homography pairs from the synthetic validation split (other photos, other seed; no lens
distortion, so every pair has an exact homography) with image1 always re-rendered in a style
family, the held-out ones (thermal, SAR: never seen in training) included. Success = the
MAGSAC++ homography of a method's matches puts the image corners within 10 px on average
(the synthetic suite's metric, on enough pairs per family to tell methods apart).

    python -m bench.zeroshot_styles [--pairs 96] [--weights W.pt ...] [--max-rotation 180]
        [--max-scale 4] [--out outputs/bench_zeroshot_styles.json]

Geometry defaults to the validation set's (in-plane rotation up to 180 degrees, scale up to 4x);
`--max-rotation 60 --max-scale 2.5` is the range the shipped weights were trained on.
Prints a table and writes the rows as JSON.
"""

import argparse
import json
import logging
import tempfile
from pathlib import Path

from recon_match.evaluation.suites import synthetic
from recon_match.evaluation.suites.base import DEFAULT_DATA_ROOT, OPENCV_SIFT, OURS, Context
from recon_match.fileio import atomic_path

ROOT = Path(__file__).resolve().parents[1]


def suite_conf(args) -> dict:
    geometry = {"max_rotation": args.max_rotation, "max_scale": args.max_scale, "distortion_prob": 0.0}
    return {"generators": ("homography",), "pairs_per_generator": args.pairs,
            "data": {**synthetic.default_conf["data"], "style_prob": 1.0, "homography": geometry}}


def rows_for(tag, results) -> list[dict]:
    rows = []
    for group, methods in results.items():
        if not group.startswith("style") or group == "style/none":
            continue
        for method, name in ((OURS, tag), (OPENCV_SIFT, OPENCV_SIFT)):
            m = methods.get(method) or {}
            if m.get("h_pairs"):
                rows.append({"group": group, "method": name, "pairs": m["h_pairs"],
                             "h_success": m["h_success"], "match_precision": m["match_precision"]})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--weights", type=Path, nargs="+", default=[None],
                        help="weights to compare (default: the shipped file)")
    parser.add_argument("--max-rotation", type=float, default=180.0)
    parser.add_argument("--max-scale", type=float, default=4.0)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_zeroshot_styles.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for i, weights in enumerate(args.weights):
        tag = OURS if weights is None else f"{OURS} {weights.name}"
        with tempfile.TemporaryDirectory() as work:
            ctx = Context(out=Path(work), data_root=args.data_root, scenes_root=None, weights=weights)
            found = rows_for(tag, synthetic.run(ctx, suite_conf(args)))
        # SIFT sees the same pairs for every weights: keep its rows once
        rows += [r for r in found if i == 0 or r["method"] != OPENCV_SIFT]
    rows.sort(key=lambda r: (r["group"] != "styles_held_out", r["group"], r["method"]))
    print(f"{'group':<18} {'method':<34} {'pairs':>5} {'success %':>9} {'precision':>9}")
    for r in rows:
        print(f"{r['group']:<18} {r['method'][-34:]:<34} {r['pairs']:>5} {r['h_success']:>9.1f} "
              f"{r['match_precision']:>9.3f}")
    meta = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    meta["weights"] = [str(w) for w in args.weights]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps({"conf": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
