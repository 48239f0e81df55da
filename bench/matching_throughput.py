"""Matching engine throughput and cost growth on a generated scene (CPU).

1. pairs/s with batch sizes 1, 2, 4 (features cached, same-size images);
2. seconds and peak RSS for 10, 20, 40 images, exhaustive vs retrieval pairs.
Each measurement runs in its own process so peak RSS is its own. Prints a table and JSON.

    python -m bench.matching_throughput [--resize 320] [--growth-resize 160] [--threads 1]

The network has random weights unless shipped weights exist: timings only (certainty
filtering is disabled so every pair carries its full number of matches).
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


def make_scene(folder: Path, n: int, size=(480, 360), seed=0):
    """`n` overlapping crops of one large smooth random texture (a planar 'scene')."""
    rng = np.random.default_rng(seed)
    w, h = size
    big = rng.random(((h + 8 * n) // 8 + 1, (w + 12 * n) // 8 + 1, 3))
    big = np.kron(big, np.ones((8, 8, 1)))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        crop = big[4 * i:4 * i + h, 12 * i:12 * i + w]
        Image.fromarray((crop * 255).astype(np.uint8)).save(folder / f"im{i:03d}.jpg", quality=92)
    return sorted(p.name for p in folder.iterdir())


def worker(args):
    """One measurement in this process: prints a JSON line."""
    from bench.common import timing_model
    from recon_match import matching, pairs
    model = timing_model(args.threads)
    out = Path(args.out)
    t0 = time.time()
    pairs_path = pairs.main(args.images, out / "pairs.txt", args.method, args.num_pairs,
                            model=model, resize=args.resize)
    t_pairs = time.time() - t0
    n_pairs = len(pairs.read_pairs(pairs_path))
    conf = {"resize": args.resize, "batch_size": args.batch_size, "mutual": False,
            "num_matches": args.num_matches, "refine": not args.no_refine}
    t1 = time.time()
    matching.main(conf, pairs_path, args.images, out, model=model, overwrite=True,
                  progress=False)
    t_match = time.time() - t1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pairs": n_pairs, "pairing_s": round(t_pairs, 2),
                      "matching_s": round(t_match, 2), "pairs_per_s": round(n_pairs / t_match, 3),
                      "peak_rss_mb": round(rss)}))


def measure(images, tmp, method, num_pairs, batch, resize, threads, num_matches, refine=True):
    out = Path(tempfile.mkdtemp(dir=tmp))
    cmd = [sys.executable, "-m", "bench.matching_throughput", "--worker", "--images", str(images),
           "--out", str(out), "--method", method, "--num-pairs", str(num_pairs),
           "--batch-size", str(batch), "--resize", str(resize), "--threads", str(threads),
           "--num-matches", str(num_matches)] + ([] if refine else ["--no-refine"])
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"worker failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resize", type=int, default=320)
    p.add_argument("--growth-resize", type=int, default=160)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num-matches", type=int, default=2000)
    p.add_argument("--sizes", default="10,20,40")
    p.add_argument("--throughput-images", type=int, default=6)
    p.add_argument("--retrieval-k", type=int, default=5)
    # worker mode (internal)
    p.add_argument("--worker", action="store_true")
    p.add_argument("--images"), p.add_argument("--out"), p.add_argument("--method")
    p.add_argument("--num-pairs", type=int), p.add_argument("--batch-size", type=int)
    p.add_argument("--no-refine", action="store_true")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    results = {"threads": args.threads, "throughput": [], "growth": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_scene(tmp / "s6", args.throughput_images)
        for b in (1, 2, 4):
            r = measure(tmp / "s6", tmp, "exhaustive", 0, b, args.resize, args.threads,
                        args.num_matches, refine=False)
            results["throughput"].append({"batch_size": b, "resize": args.resize, **r})
            print("throughput", json.dumps(results["throughput"][-1]), flush=True)
        for n in (int(s) for s in args.sizes.split(",")):
            make_scene(tmp / f"s{n}", n)
            for method in ("exhaustive", "retrieval"):
                r = measure(tmp / f"s{n}", tmp, method, args.retrieval_k, 4, args.growth_resize,
                            args.threads, args.num_matches)
                results["growth"].append({"images": n, "method": method,
                                          "resize": args.growth_resize, **r})
                print("growth", json.dumps(results["growth"][-1]), flush=True)
    n_tp = args.throughput_images * (args.throughput_images - 1) // 2
    print(f"\nThroughput, {args.threads} thread(s), resize {args.resize}, {n_tp} pairs of "
          f"{args.throughput_images} images, no refinement\n| batch | pairs/s | s | peak RSS MB |\n|---|---|---|---|")
    for r in results["throughput"]:
        print(f"| {r['batch_size']} | {r['pairs_per_s']:.2f} | {r['matching_s']:.1f} | {r['peak_rss_mb']} |")
    print(f"\nCost growth, resize {args.growth_resize}, batch 4, with refinement, "
          f"retrieval k={args.retrieval_k}\n"
          "| images | method | pairs | seconds | s/pair | peak RSS MB |\n|---|---|---|---|---|---|")
    for r in results["growth"]:
        print(f"| {r['images']} | {r['method']} | {r['pairs']} | {r['matching_s'] + r['pairing_s']:.1f} | "
              f"{r['matching_s'] / r['pairs']:.3f} | {r['peak_rss_mb']} |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
