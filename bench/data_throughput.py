"""Throughput of the synthetic mixture: pairs/s per worker (1 thread) for each generator and
the default mix, at 320x240 and 640x480. Prints a table and a JSON line.

    python -m bench.data_throughput [--pairs 30] [--sizes 240x320 480x640] [--photos DIR]

CPU time of this process is reported next to wall time: on a shared machine, wall time
includes waiting for a core, CPU time is what one dedicated worker would take.
"""

import argparse
import json
import time

import cv2
import torch

from recon_match.data import MixtureDataset
from recon_match.data.dataset import default_conf


def measure(conf, n):
    ds = MixtureDataset(conf)
    ds[10_000]  # warm-up: imports, photo cache
    w, c = time.perf_counter(), time.process_time()
    for i in range(n):
        ds[i]
    return n / (time.perf_counter() - w), n / (time.process_time() - c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--sizes", nargs="+", default=["240x320", "480x640"])
    ap.add_argument("--photos", default=None)
    ap.add_argument("--multiview-pairs", type=int, default=4, help="multiview is ~1 s a pair")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    gens = list(default_conf["weights"])
    results = []
    print(f"{'generator':<16}{'size':>10}{'pairs/s (cpu)':>15}{'pairs/s (wall)':>16}")
    for size in args.sizes:
        h, w = (int(v) for v in size.split("x"))
        for name in gens + ["mix"]:
            conf = {"size": (h, w), "photo_root": args.photos}
            if name != "mix":
                conf["weights"] = {name: 1.0}
            n = args.multiview_pairs if name == "multiview" else args.pairs
            wall, cpu = measure(conf, n)
            results.append({"generator": name, "size": [h, w], "pairs_per_s_cpu": round(cpu, 1),
                            "pairs_per_s_wall": round(wall, 1), "pairs": n})
            print(f"{name:<16}{w}x{h:>6}{cpu:>15.1f}{wall:>16.1f}", flush=True)
    print(json.dumps({"bench": "data_throughput", "results": results}))


if __name__ == "__main__":
    main()
