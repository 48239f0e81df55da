"""Speed suite: pairs per second and peak memory, ours vs kornia's LoFTR architecture.

Both methods get the same image pair (two sample-scene views resized to the test size, or
a fixed random texture when no sample scene is there), repeated to fill each batch. Ours:
`extract` of both images + `match` + `sample(5000)`; LoFTR: `kornia.feature.LoFTR(
pretrained=None)` on the grayscale pair (random weights: timing only, they give almost no
matches, so LoFTR's fine stage is cheaper than with trained weights). Every (method, batch)
runs in a fresh subprocess with `threads` torch threads, so its peak RSS is its own.

Run one measurement by hand:
    python -m recon_match.evaluation.suites.speed --method recon-match --batch 2 --size 640x480
"""

import argparse
import json
import logging
import resource
import subprocess
import sys
import time

import numpy as np

from .base import LOFTR, OURS

logger = logging.getLogger(__name__)

COLUMNS = None  # all metrics
PLOT = (["pairs/s b1", "pairs/s b2", "pairs/s b4"], "pairs per second")

default_conf = {
    "size": (640, 480),        # W x H
    "batches": (1, 2, 4),
    "repeats": {OURS: 5, LOFTR: 1},
    "quick_size": (320, 240),
    "quick_batches": (1, 2),
    "quick_repeats": {OURS: 2, LOFTR: 1},
    "threads": 2,
    "num_matches": 5000,
    "timeout_s": 600,
}
METHODS = (OURS, LOFTR)


def load_pair(paths, size) -> np.ndarray:
    """2 x H x W x 3 uint8: the images at `paths` resized to `size` (W, H), or a fixed
    random texture when `paths` is empty."""
    import cv2
    from ...imageio import read_image
    if paths:
        return np.stack([cv2.resize(read_image(p), tuple(size), interpolation=cv2.INTER_AREA)
                         for p in paths])
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (2, size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return np.stack([cv2.resize(s, tuple(size), interpolation=cv2.INTER_CUBIC) for s in small])


def make_runner(method, pair, weights, num_matches):
    """step(batch): process one batch of `batch` copies of `pair` with `method`."""
    import torch
    rgb = torch.from_numpy(pair).permute(0, 3, 1, 2).float().div(255)
    if method == OURS:
        from ...model import load_matcher
        model = load_matcher(weights, "cpu")

        def step(batch):
            x0, x1 = (rgb[i:i + 1].expand(batch, -1, -1, -1).contiguous() for i in (0, 1))
            out = model.match(model.extract(x0), model.extract(x1))
            return model.sample(out, num=num_matches, mutual=True)
        return step
    import kornia.feature
    model = kornia.feature.LoFTR(pretrained=None).eval()
    gray = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]

    def step(batch):
        return model({f"image{i}": gray[i:i + 1].expand(batch, -1, -1, -1).contiguous()
                      for i in (0, 1)})
    return step


def measure(method, batch, size, repeats, threads, weights=None, paths=(), num_matches=5000) -> dict:
    """Run in the current process: one warm-up at batch 1, then `repeats` timed batches."""
    import torch
    torch.set_num_threads(threads)
    step = make_runner(method, load_pair(paths, size), weights, num_matches)
    times = []
    with torch.no_grad():
        step(1)  # warm-up: allocator, kernel selection
        for _ in range(repeats):
            t0 = time.perf_counter()
            step(batch)
            times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return {"seconds_per_batch": median, "pairs_per_s": batch / median,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_in_subprocess(method, batch, size, repeats, conf, weights, paths) -> dict:
    cmd = [sys.executable, "-m", __name__, "--method", method, "--batch", str(batch),
           "--size", f"{size[0]}x{size[1]}", "--repeats", str(repeats),
           "--threads", str(conf["threads"]), "--num-matches", str(conf["num_matches"])]
    cmd += ["--weights", str(weights)] if weights else []
    cmd += [arg for p in paths for arg in ("--image", str(p))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=conf["timeout_s"])
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {conf['timeout_s']} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit code {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_images(ctx) -> list:
    """Two neighbouring views of the first sample scene, or [] (random texture)."""
    from .base import image_dir, scene_folders
    from ...imageio import list_images
    for _, folder, _ in scene_folders(ctx, need_gt=False):
        names = list_images(image_dir(folder))
        if len(names) >= 2:
            return [image_dir(folder) / n for n in names[:2]]
    return []


def run(ctx, conf=None) -> dict:
    conf = {**default_conf, **(conf or {})}
    size = conf["quick_size"] if ctx.quick else conf["size"]
    batches = conf["quick_batches"] if ctx.quick else conf["batches"]
    repeats = conf["quick_repeats"] if ctx.quick else conf["repeats"]
    paths = test_images(ctx)
    results = {}
    for method in METHODS:
        res = {}
        for b in batches:
            logger.info("speed: %s, batch %d, %dx%d, %d threads", method, b, *size, conf["threads"])
            r = measure_in_subprocess(method, b, size, repeats[method], conf, ctx.weights, paths)
            if "error" in r:
                logger.warning("speed %s batch %d failed: %s", method, b, r["error"])
                res[f"error b{b}"] = r["error"]
                continue
            res.update({f"pairs/s b{b}": r["pairs_per_s"], f"s/pair b{b}": 1 / r["pairs_per_s"],
                        f"peak_rss_mb b{b}": r["peak_rss_mb"]})
        results[method] = res
    for b in batches:  # the headline ratio: how many times faster than LoFTR
        ours, loftr = results[OURS].get(f"pairs/s b{b}"), results[LOFTR].get(f"pairs/s b{b}")
        if ours and loftr:
            results[OURS][f"x_loftr b{b}"] = ours / loftr
    return {f"{size[0]}x{size[1]}": results}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="One speed measurement (prints a JSON line).")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", default="640x480", help="WxH")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--num-matches", type=int, default=5000)
    p.add_argument("--weights", default=None)
    p.add_argument("--image", action="append", default=[], help="two images (default: random texture)")
    args = p.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    print(json.dumps(measure(args.method, args.batch, size, args.repeats, args.threads,
                             args.weights, args.image, args.num_matches)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
