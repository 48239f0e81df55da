"""Speed suite: pairs per second and peak memory, ours vs kornia's LoFTR architecture.

Both methods get the same image pair (two sample-scene views resized to the test size, or
a fixed random texture when no sample scene is there), repeated to fill each batch. Ours:
`extract` of both images + `match` + `sample(5000)` ("s/pair"), and `match` + `sample` with
cached features ("cached s/pair": the SfM cost per pair, where each image is in many pairs);
LoFTR: `kornia.feature.LoFTR(pretrained=None)` on the grayscale pair (random weights: timing
only; they give almost no matches, so LoFTR's fine stage is cheaper than with trained
weights). Every (method, batch) runs in a fresh subprocess with `threads` torch threads, so
its peak RSS is its own. Process CPU seconds and the load average are recorded next to wall
time, because development machines are shared (as in `bench/model_speed.py`, which times
the stages of batch 1 in more detail).

Run one measurement by hand:
    python -m recon_match.evaluation.suites.speed --method recon-match --batch 2 --size 640x480
"""

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time

import numpy as np

from .base import LOFTR, OURS

logger = logging.getLogger(__name__)

COLUMNS = ["pairs/s", "s/pair", "cpu s/pair", "cached s/pair", "peak_rss_mb", "x_loftr",
           "x_loftr cpu", "load_avg", "error"]
PLOT = (["pairs/s"], "pairs per second")

default_conf = {
    "size": (640, 480),        # W x H
    "batches": (1, 2, 4),
    "repeats": {OURS: 3, LOFTR: 1},
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


def make_steps(method, pair, weights, num_matches) -> dict:
    """{name: step(batch)}: functions processing `batch` copies of `pair`. "pair": from pixels
    to matches; ours also "cached": match + sample with each image's features computed
    already (the per-pair cost in SfM, where every image is in many pairs)."""
    import torch
    rgb = torch.from_numpy(pair).permute(0, 3, 1, 2).float().div(255)
    if method == OURS:
        from ...model import load_matcher
        model = load_matcher(weights, "cpu")
        inputs = lambda b: [rgb[i:i + 1].expand(b, -1, -1, -1).contiguous() for i in (0, 1)]
        feats = {}

        def pair_step(b):
            x0, x1 = inputs(b)
            return model.sample(model.match(model.extract(x0), model.extract(x1)), num=num_matches)

        def cached_step(b):
            if b not in feats:
                feats[b] = [model.extract(x) for x in inputs(b)]
            return model.sample(model.match(*feats[b]), num=num_matches)
        return {"pair": pair_step, "cached": cached_step}
    import kornia.feature
    model = kornia.feature.LoFTR(pretrained=None).eval()
    gray = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    return {"pair": lambda b: model({f"image{i}": gray[i:i + 1].expand(b, -1, -1, -1).contiguous()
                                     for i in (0, 1)})}


def measure(method, batch, size, repeats, threads, weights=None, paths=(), num_matches=5000) -> dict:
    """Run in the current process: a warm-up, then `repeats` timed batches per step.
    Returns medians per pair, wall and process CPU seconds (CPU time is the figure
    to read on a busy machine), peak RSS and the load average at the start."""
    import torch
    torch.set_num_threads(threads)
    load = os.getloadavg()[0]
    steps = make_steps(method, load_pair(paths, size), weights, num_matches)
    out = {"load_avg": load}
    with torch.no_grad():
        for name, step in steps.items():
            # warm-up (allocator, kernel selection, ours' cached features) at the measured
            # batch; LoFTR at batch 1, as its warm-up at batch 4 would cost half a minute
            step(batch if method == OURS else 1)
            wall, cpu = [], []
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                step(batch)
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            out[f"{name}_s"] = float(np.median(wall)) / batch
            out[f"{name}_cpu_s"] = float(np.median(cpu)) / batch
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


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


def metrics(r: dict) -> dict:
    if "error" in r:
        return {"error": r["error"]}
    out = {"pairs/s": 1 / r["pair_s"], "s/pair": r["pair_s"], "cpu s/pair": r["pair_cpu_s"]}
    if "cached_s" in r:
        out.update({"cached s/pair": r["cached_s"], "cached cpu s/pair": r["cached_cpu_s"]})
    out.update({"peak_rss_mb": r["peak_rss_mb"], "load_avg": r["load_avg"]})
    return out


def run(ctx, conf=None) -> dict:
    conf = {**default_conf, **(conf or {})}
    size = conf["quick_size"] if ctx.quick else conf["size"]
    batches = conf["quick_batches"] if ctx.quick else conf["batches"]
    repeats = conf["quick_repeats"] if ctx.quick else conf["repeats"]
    paths = test_images(ctx)
    results = {}
    for b in batches:
        res = {}
        for method in METHODS:
            logger.info("speed: %s, batch %d, %dx%d, %d threads", method, b, *size, conf["threads"])
            res[method] = metrics(measure_in_subprocess(method, b, size, repeats[method], conf,
                                                        ctx.weights, paths))
            if "error" in res[method]:
                logger.warning("speed %s batch %d failed: %s", method, b, res[method]["error"])
        if "pairs/s" in res[OURS] and "pairs/s" in res[LOFTR]:  # the headline ratio
            res[OURS]["x_loftr"] = res[OURS]["pairs/s"] / res[LOFTR]["pairs/s"]
            res[OURS]["x_loftr cpu"] = res[LOFTR]["cpu s/pair"] / res[OURS]["cpu s/pair"]
        results[f"{size[0]}x{size[1]} batch {b}"] = res
    return results


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
