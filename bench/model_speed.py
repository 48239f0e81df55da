"""Speed and memory of the dense matcher against kornia's LoFTR, same input, same run.

    python bench/model_speed.py [--size 640x480] [--threads 2] [--repeats 5] [--num 5000] [--json out.json]

Each model runs in its own child process so that its peak RSS is its own. Ours is timed
three ways: features of both images (`extract`, once per image in SfM), `match + sample`
with cached features (the per-pair cost when images are reused: the target, <= 0.5 s), and
the whole pair from pixels. The input is two overlapping crops of a procedural image (fixed
seed, no data needed), so the trained matcher finds and samples its full 5,000 matches:
random noise would give none and time a sampler with nothing to do. kornia's LoFTR
(random weights, no download) is timed on the grayscale of the same pair. Prints a table
and a JSON line, with wall and process-CPU medians; the load average is reported because
the development machines are shared: on a busy machine, time with `--threads 1` and read
the CPU seconds (2 OpenMP threads stall badly when cores are taken).
"""

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_time(fn, repeats, cpu_times=None, key=None):
    """Median wall seconds of fn(); the median process CPU seconds go to cpu_times[key]."""
    fn()  # warm-up: allocator, oneDNN kernels
    ts, cs = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    if cpu_times is not None:
        cpu_times[key] = statistics.median(cs)
    return statistics.median(ts)


def test_pair(h, w):
    """Two 1 x 3 x h x w images in [0, 1]: overlapping crops (shifted by 48 x 32 px) of a
    procedural image of the training mixture (seed 0), which the trained matcher matches."""
    from recon_match.data import MixtureDataset
    img = MixtureDataset({"size": (h + 32, w + 48), "weights": {"homography": 1.0},
                          "photo_root": None, "style_prob": 0.0, "seed": 0})[0]["image0"]
    return img[None, :, :h, :w].contiguous(), img[None, :, 32:, 48:].contiguous()


def _ours(h, w, threads, repeats, num, weights):
    import torch

    from recon_match.model import DenseMatcher, load_matcher

    torch.set_num_threads(threads)
    model = load_matcher(weights, device="cpu") if weights != "random" else DenseMatcher().eval()
    im0, im1 = test_pair(h, w)
    res = {"params_M": sum(p.numel() for p in model.parameters()) / 1e6}
    cpu = res["cpu_s"] = {}
    with torch.no_grad():
        f0, f1 = model.extract(im0), model.extract(im1)
        res["extract_per_image_s"] = _median_time(lambda: model.extract(im0), repeats, cpu, "extract_per_image")
        res["match_s"] = _median_time(lambda: model.match(f0, f1), repeats, cpu, "match")
        res["match_sample_s"] = _median_time(lambda: model.sample(model.match(f0, f1), num), repeats,
                                             cpu, "match_sample")
        res["pair_from_pixels_s"] = _median_time(
            lambda: model.sample(model({"image0": im0, "image1": im1}), num), repeats, cpu, "pair_from_pixels")
        res["matches"] = int(model.sample(model.match(f0, f1), num)[0]["keypoints0"].shape[0])
    return res


def _loftr(h, w, threads, repeats):
    import kornia
    import torch

    torch.set_num_threads(threads)
    model = kornia.feature.LoFTR(pretrained=None).eval()
    data = {f"image{i}": im.mean(1, keepdim=True) for i, im in enumerate(test_pair(h, w))}
    cpu = {}
    with torch.no_grad():
        t = _median_time(lambda: model(data), repeats, cpu, "pair_from_pixels")
    return {"params_M": sum(p.numel() for p in model.parameters()) / 1e6, "pair_from_pixels_s": t, "cpu_s": cpu}


def _child(name, args, queue):
    try:
        res = _ours(*args) if name == "ours" else _loftr(*args)
        res["peak_rss_GB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        queue.put(res)
    except Exception as e:  # reported in the table instead of killing the whole benchmark
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_isolated(name, args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(name, args, queue))
    p.start()
    res = queue.get()
    p.join()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x480", help="WxH")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--num", type=int, default=5000, help="matches sampled per pair")
    ap.add_argument("--weights", default=None, help="weights .pt; default shipped; 'random' = untrained")
    ap.add_argument("--skip-loftr", action="store_true")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    load0 = os.getloadavg()[0]
    ours = run_isolated("ours", (h, w, args.threads, args.repeats, args.num, args.weights))
    loftr = {} if args.skip_loftr else run_isolated("loftr", (h, w, args.threads, args.repeats))
    res = {"size": [w, h], "threads": args.threads, "repeats": args.repeats, "ours": ours, "kornia_loftr": loftr,
           "load_avg_before": load0, "load_avg_after": os.getloadavg()[0]}
    if "match_sample_s" in ours and "pair_from_pixels_s" in loftr:
        res["loftr_over_ours_pair"] = loftr["pair_from_pixels_s"] / ours["pair_from_pixels_s"]
        res["loftr_over_ours_cached"] = loftr["pair_from_pixels_s"] / ours["match_sample_s"]
    print(f"{w}x{h}, {args.threads} threads, median of {args.repeats} (load avg {load0:.1f} -> {res['load_avg_after']:.1f})")
    print(f"| model | params (M) | extract / image (s) | match + sample {args.num} (s) | pair from pixels (s) "
          "| pair, CPU s | peak RSS (GB) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("ours (DenseMatcher)", ours), ("kornia LoFTR (random weights)", loftr)):
        if not r:
            continue
        if "error" in r:
            print(f"| {name} | error: {r['error']} |||||")
            continue
        cells = [r.get("params_M"), r.get("extract_per_image_s"), r.get("match_sample_s"),
                 r.get("pair_from_pixels_s"), r.get("cpu_s", {}).get("pair_from_pixels"), r.get("peak_rss_GB")]
        print("| " + name + " | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells) + " |")
    if "loftr_over_ours_pair" in res:
        print(f"kornia LoFTR / ours: {res['loftr_over_ours_pair']:.1f}x (pair from pixels), "
              f"{res['loftr_over_ours_cached']:.1f}x (ours with cached features)")
    print(json.dumps(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
