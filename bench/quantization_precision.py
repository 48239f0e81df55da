"""Precision and track length of refinement + quantization, with an oracle matcher.

Views of one photo under known homographies; an oracle stands in for the network: its
dense warp is the true homography plus Gaussian noise of `--noise` network pixels, sampled
by the real sampler (`recon_match.model.sample`), then refined and quantized by the real
engine code. Reports, per quantization setting, the transfer error of the final matches
against the true homography (original pixels), matches per pair and mean track length.

    python -m bench.quantization_precision [--image PATH] [--views 6] [--noise 1.0]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch

from recon_match.coords import pixel_grid, rescale
from recon_match.h5io import read_keypoints, read_matches
from recon_match.matching import Engine, make_conf
from recon_match.model.sample import sample_matches
from recon_match.preprocess import network_size
from recon_match.quantize import quantize

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared/data/scenes/strecha_herzjesu_p8/images"


def make_views(img, n, rng):
    """n views (H x W gray) of `img` and their homographies from the base image."""
    h, w = img.shape
    views, hs = [], []
    for i in range(n):
        a, s = np.radians(rng.uniform(-8, 8)), rng.uniform(0.85, 1.15)
        c, t = np.array([w / 2, h / 2]), rng.uniform(-0.05, 0.05, 2) * [w, h]
        R = np.array([[s * np.cos(a), -s * np.sin(a)], [s * np.sin(a), s * np.cos(a)]])
        H = np.eye(3)
        H[:2, :2], H[:2, 2] = R, c + t - R @ c
        H[2, :2] = rng.uniform(-1e-5, 1e-5, 2) * (i > 0)
        views.append(cv2.warpPerspective(img, H, (w, h), flags=cv2.INTER_CUBIC,
                                         borderMode=cv2.BORDER_REFLECT))
        hs.append(H)
    return views, hs


def apply_h(H, xy):
    p = np.c_[xy, np.ones(len(xy))] @ H.T
    return p[:, :2] / p[:, 2:]


def oracle_warp(H, size_a, scale_a, scale_b, size_b_net, noise, rng):
    """Dense warp from image a's network grid into image b's network pixels (+ noise)."""
    wa, ha = size_a
    grid = pixel_grid(ha, wa).reshape(-1, 2).numpy().astype(np.float64)
    xy = apply_h(H, rescale(grid, scale_a))           # original pixels of b
    net = (xy + 0.5) / np.asarray(scale_b) - 0.5 + rng.normal(0, noise, xy.shape)
    wb, hb = size_b_net
    inside = (net[:, 0] > 0) & (net[:, 0] < wb - 1) & (net[:, 1] > 0) & (net[:, 1] < hb - 1)
    warp = torch.tensor(net, dtype=torch.float32).reshape(ha, wa, 2)
    cert = torch.tensor(inside, dtype=torch.float32).reshape(ha, wa) * 0.9
    return warp, cert


def raw_matches(views, hs, resize, noise, num, refine, sampler, seed=0):
    rng = np.random.default_rng(seed)
    h, w = views[0].shape
    nw, nh = network_size(w, h, resize)
    scale = (w / nw, h / nh)
    conf = make_conf({"resize": resize, "refine": refine, "num_matches": num,
                      "min_certainty": 0.05})
    engine = Engine(None, conf, ".", "cpu")
    ims = [{"gray": v, "scale": scale} for v in views]
    pairs, raw = [], []
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            Hij = hs[j] @ np.linalg.inv(hs[i])
            w0, c0 = oracle_warp(Hij, (nw, nh), scale, scale, (nw, nh), noise, rng)
            w1, c1 = oracle_warp(np.linalg.inv(Hij), (nw, nh), scale, scale, (nw, nh), noise, rng)
            out = {"warp0": w0[None], "certainty0": c0[None], "warp1": w1[None], "certainty1": c1[None]}
            if sampler == "model":
                s = sample_matches(out, num, mutual=True, mutual_px=3.0, min_certainty=0.05,
                                   cell=32, seed=0)[0]
            else:
                s = engine.sample(out)[0]
            pairs.append((f"v{i}", f"v{j}"))
            raw.append(engine.to_original(s, ims[i], ims[j]))
    engine.close()
    return pairs, raw, scale


def evaluate(pairs, raw, hs, size, scale, qconf, tmp):
    feats, matches = Path(tmp) / "f.h5", Path(tmp) / "m.h5"
    sizes = {n: size for p in pairs for n in p}
    scales = {n: float(np.mean(scale)) for n in sizes}
    with h5py.File(feats, "w") as ff, h5py.File(matches, "w") as fm:
        stats = quantize(pairs, lambda k: raw[k], sizes, ff, fm, qconf, scales, progress=False)
    errs, n = [], []
    for n0, n1 in pairs:
        i, j = int(n0[1:]), int(n1[1:])
        m, _ = read_matches(matches, n0, n1)
        k0, k1 = read_keypoints(feats, n0)[m[:, 0]], read_keypoints(feats, n1)[m[:, 1]]
        errs.append(np.linalg.norm(apply_h(hs[j] @ np.linalg.inv(hs[i]), k0) - k1, axis=1))
        n.append(len(m))
    e = np.concatenate(errs)
    return {"matches_per_pair": float(np.mean(n)), "median_err_px": float(np.median(e)),
            "within_1px": float((e < 1).mean()), "mean_track_length": stats["mean_track_length"],
            "keypoints_per_image": stats["mean_keypoints"]}


def raw_error(pairs, raw, hs):
    e = [np.linalg.norm(apply_h(hs[int(b[1:])] @ np.linalg.inv(hs[int(a[1:])]), r["keypoints0"])
                        - r["keypoints1"], axis=1) for (a, b), r in zip(pairs, raw)]
    e = np.concatenate(e)
    return {"matches_per_pair": float(np.mean([len(r["scores"]) for r in raw])),
            "median_err_px": float(np.median(e)), "within_1px": float((e < 1).mean())}


SETTINGS = {
    "cell 4 / err 2 / mean": {"cell_size": 4, "max_error": 2, "position": "mean"},
    "cell 2 / err 1 / mean": {"cell_size": 2, "max_error": 1, "position": "mean"},
    "cell 1 / err 0.5 / mean": {"cell_size": 1, "max_error": 0.5, "position": "mean"},
    "cell 1 / err 0.5 / best": {"cell_size": 1, "max_error": 0.5, "position": "best"},
    "cell 1 / err 0.25 / mean": {"cell_size": 1, "max_error": 0.25, "position": "mean"},
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    p.add_argument("--side", type=int, default=1536, help="long side of the base view")
    p.add_argument("--views", type=int, default=5)
    p.add_argument("--resize", type=int, default=640)
    p.add_argument("--noise", type=float, default=1.0, help="oracle noise, network px")
    p.add_argument("--num-matches", type=int, default=3000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    path = args.image if args.image.is_file() else sorted(args.image.glob("*"))[0]
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise SystemExit(f"{path}: cannot read the base image")
    s = args.side / max(img.shape)
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    views, hs = make_views(img, args.views, np.random.default_rng(0))
    size = (img.shape[1], img.shape[0])
    rows = {}
    for sampler, refine in [("model", False), ("model", True), ("grid", False), ("grid", True)]:
        pairs, raw, scale = raw_matches(views, hs, args.resize, args.noise, args.num_matches,
                                        refine, sampler)
        tag = f"{sampler} sampler, {'refined' if refine else 'raw'}"
        rows[f"{tag}: before quantization"] = raw_error(pairs, raw, hs)
        for name, q in SETTINGS.items():
            with tempfile.TemporaryDirectory() as tmp:
                rows[f"{tag}: {name}"] = evaluate(pairs, raw, hs, size, scale, q, tmp)
    print(f"\n{args.views} views of {path.name} at {size[0]}x{size[1]}, network {args.resize} px "
          f"(scale {np.mean(scale):.2f}), oracle noise {args.noise} network px\n"
          "| setting (cell/error in network px) | matches/pair | median err px | <1 px | "
          "track length | kpts/image |\n|---|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['matches_per_pair']:.0f} | {r['median_err_px']:.2f} | "
              f"{100 * r['within_1px']:.0f}% | {r.get('mean_track_length', float('nan')):.2f} | "
              f"{r.get('keypoints_per_image', float('nan')):.0f} |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
