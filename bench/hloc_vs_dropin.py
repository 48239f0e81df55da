"""hloc's own dense matching with our plugin vs our drop-in engine, same scene and pairs.

    python -m bench.hloc_vs_dropin [--scene object] [--conf recon_dense_fast] [--resize 416]
                                   [--window 2] [--threads 2] [--out outputs/bench_hloc]

Both runs take the same hloc conf, pairs file and images; each is followed by hloc's
`reconstruction.main`. Prints a table and writes `hloc_vs_dropin.json` in `--out`.
Needs upstream hloc (install it from its git repository, cvg/Hierarchical-Localization).
"""

import argparse
import copy
import json
import logging
import shutil
import time
from pathlib import Path

import h5py
import torch

import hloc_plugins
from hloc_plugins import dropin
from recon_match.imageio import list_images
from recon_match.model import WEIGHTS_PATH
from recon_match.pairs import read_pairs, write_pairs
from recon_match.render import ensure_sample_scene

COLUMNS = ("method", "pairs", "match_s", "pairs_per_s", "kps_per_image", "registered",
           "points3D", "mean_track_length", "sfm_s")


def reconstruct(out, images, pairs, features, matches):
    """hloc's reconstruction.main; a failure is recorded (zero-match runs make hloc crash)."""
    from hloc import reconstruction
    t0 = time.perf_counter()
    try:
        rec = reconstruction.main(out / "sfm", images, pairs, features, matches)
        error = None if rec is not None else "no model"
    except Exception as e:  # upstream raises assorted errors on degenerate inputs
        rec, error = None, f"{type(e).__name__}: {e}"
    return {
        "registered": f"{rec.num_reg_images() if rec else 0}/{len(list_images(images))}",
        "points3D": rec.num_points3D() if rec else 0,
        "mean_track_length": round(rec.compute_mean_track_length(), 2) if rec else 0.0,
        "sfm_s": round(time.perf_counter() - t0, 1), "sfm_error": error,
    }


def run_one(name, match_fn, conf, pairs, images, out):
    """Match with `match_fn` (hloc.match_dense.main's signature), then reconstruct."""
    from hloc.utils.io import list_h5_names
    out.mkdir(parents=True)  # hloc's match_dense.main does not create export_dir
    num_pairs = len(read_pairs(pairs))
    t0 = time.perf_counter()
    features, matches = match_fn(conf, pairs, images, export_dir=out)
    match_s = time.perf_counter() - t0
    names = list_h5_names(features)
    with h5py.File(features, "r") as f:
        kps = sum(len(f[n]["keypoints"]) for n in names) / max(len(names), 1)
    return {"method": name, "pairs": num_pairs, "match_s": round(match_s, 1),
            "pairs_per_s": round(num_pairs / match_s, 2), "kps_per_image": round(kps),
            **reconstruct(out, images, pairs, features, matches)}


def table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="object")
    parser.add_argument("--conf", default="recon_dense_fast", choices=sorted(hloc_plugins.CONFS))
    parser.add_argument("--resize", type=int, default=416)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_hloc"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    hloc_plugins.register(torchvision_stand_in=True)
    from hloc import match_dense
    shutil.rmtree(args.out, ignore_errors=True)
    # a private copy of the images: a re-render of the shared sample scene mid-run is harmless
    images = Path(shutil.copytree(ensure_sample_scene(args.scene) / "images", args.out / "images"))
    names = list_images(images)
    pairs = args.out / "pairs-ring.txt"  # each view with its next --window views in the ring
    write_pairs(pairs, [(names[i], names[(i + k) % len(names)]) for i in range(len(names))
                        for k in range(1, args.window + 1)])
    conf = copy.deepcopy(match_dense.confs[args.conf])
    conf["preprocessing"]["resize_max"] = args.resize

    rows = [run_one("hloc match_dense + plugin", match_dense.main, conf, pairs, images,
                    args.out / "hloc"),
            run_one("drop-in (recon_match engine)", dropin.main, conf, pairs, images,
                    args.out / "dropin")]
    weights = str(WEIGHTS_PATH) if WEIGHTS_PATH.is_file() else "untrained (no shipped weights)"
    result = {"scene": args.scene, "conf": conf, "threads": args.threads, "weights": weights,
              "device": "cuda" if torch.cuda.is_available() else "cpu", "rows": rows}
    (args.out / "hloc_vs_dropin.json").write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
