"""Memory and time as the image count grows: pair selection + the matching engine.

A generated scene of N small overlapping images (crops of one procedural texture) is paired
(sequential window, or retrieval top-k) and matched with `recon_match.matching.main` at a
small resize. Each N runs in its own process, so its peak RSS is its own; the table shows
whether memory stays bounded (streamed pairs, bounded LRU caches, sharded raw matches) while
seconds per pair stay flat.

    python -m bench.scale [--sizes 10,50,200] [--with-1000] [--method sequential|retrieval]

Random weights unless shipped weights exist (certainty filtering off so every pair carries
matches): timings and memory only.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_scene(folder: Path, n: int, size=(160, 120), seed=0):
    """`n` crops of one procedural texture band, neighbours overlapping by ~90 %."""
    from recon_match.data.sources import procedural_image
    rng = np.random.default_rng(seed)
    w, h = size
    band = procedural_image(rng, h + 64, w + 1024, kind="dead_leaves")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        x, y = (12 * i) % 1024, (5 * i) % 64
        Image.fromarray(band[y:y + h, x:x + w]).save(folder / f"im{i:04d}.png")


def worker(args):
    """One N in this process: pairs + matching; prints one JSON line."""
    from bench.common import timing_model
    from recon_match import matching
    from recon_match.imageio import list_images
    from recon_match.pairs import select, write_pairs
    from recon_match.pairs.retrieval import global_descriptors
    model = timing_model(args.threads)
    out = Path(args.out)
    t0 = time.time()
    names = list_images(args.images)
    if args.method == "sequential":  # no quadratic jumps: pairs grow linearly with N
        gen = select.sequential(names, window=args.window, quadratic=False)
    else:
        gen = select.retrieval(names, global_descriptors(model.eval(), args.images, names,
                                                         resize=args.resize), args.window)
    n_pairs = write_pairs(out / "pairs.txt", gen)
    t_pairs = time.time() - t0
    rss_pairs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conf = {"resize": args.resize, "batch_size": 4, "num_matches": args.num_matches,
            "mutual": False, "feature_cache_mb": args.cache_mb, "image_cache_mb": args.cache_mb}
    t1 = time.time()
    matching.main(conf, out / "pairs.txt", args.images, out, model=model, progress=False)
    t_match = time.time() - t1
    print(json.dumps({"pairs": n_pairs, "pairing_s": round(t_pairs, 2),
                      "matching_s": round(t_match, 2),
                      "s_per_pair": round(t_match / n_pairs, 4),
                      "rss_after_pairing_mb": round(rss_pairs),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def measure(n, tmp: Path, args):
    images = tmp / f"images{n}"
    make_scene(images, n)
    out = Path(tempfile.mkdtemp(dir=tmp))
    cmd = [sys.executable, "-m", "bench.scale", "--worker", "--images", str(images),
           "--out", str(out), "--method", args.method, "--window", str(args.window),
           "--resize", str(args.resize), "--threads", str(args.threads),
           "--num-matches", str(args.num_matches), "--cache-mb", str(args.cache_mb)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"N={n} failed: {res.stderr[-2000:]}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    # the children's high-water mark, as the OS accounts it (includes every finished worker)
    row["children_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return {"images": n, **row}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="10,50,200")
    p.add_argument("--with-1000", action="store_true", help="also N = 1000 (long on a CPU)")
    p.add_argument("--method", choices=("sequential", "retrieval"), default="sequential")
    p.add_argument("--window", type=int, default=2, help="sequential window / retrieval k")
    p.add_argument("--resize", type=int, default=160)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num-matches", type=int, default=500)
    p.add_argument("--cache-mb", type=int, default=64, help="feature and image LRU caps")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--images", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    sizes = [int(s) for s in args.sizes.split(",")] + ([1000] if args.with_1000 else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows.append(measure(n, Path(tmp), args))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.method} pairs (window/k {args.window}), 160x120 images, resize "
          f"{args.resize}, {args.num_matches} matches/pair, caches {args.cache_mb} MB, "
          f"{args.threads} thread(s)\n"
          "| images | pairs | pairing s | matching s | s/pair | peak RSS MB |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['pairs']} | {r['pairing_s']:.1f} | {r['matching_s']:.1f} | "
              f"{r['s_per_pair']:.3f} | {r['peak_rss_mb']} |")
    print(json.dumps({"method": args.method, "resize": args.resize, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
