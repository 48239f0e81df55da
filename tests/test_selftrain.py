"""Self-training on video: label filtering, propagation, the resumable label store, the real-pair
dataset and its sparse loss. Tiny synthetic clips generated in tmp (not the shared videos)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from recon_match.model import DenseMatcher
from recon_match.selftrain.dataset import MixedDataset, PseudoPairDataset
from recon_match.selftrain.label import epipolar_distances, verify
from recon_match.selftrain.losses import sparse_losses
from recon_match.selftrain.propagate import (
    build_tracks,
    connected_components,
    propagate,
)
from recon_match.selftrain.store import label_videos, model_hash, read_clip

ROOT = Path(__file__).resolve().parents[1]
H, W = 96, 128


def apply_h(Hm, xy):
    p = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ Hm.T
    return p[:, :2] / p[:, 2:]


def frame_homographies(n, seed=0):
    """H_k maps frame-0 pixels to frame-k pixels: a smooth drift, zoom and rotation."""
    rng = np.random.default_rng(seed)
    hs = [np.eye(3)]
    for _ in range(1, n):
        a = rng.normal(0, 0.01)
        step = np.array([[np.cos(a) * 1.01, -np.sin(a), rng.normal(0, 2)],
                         [np.sin(a), np.cos(a) * 1.01, rng.normal(0, 2)],
                         [rng.normal(0, 2e-5), rng.normal(0, 2e-5), 1]])
        hs.append(step @ hs[-1])
    return hs


def write_clip(folder, n, seed):
    """A clip of n frames: one textured plane seen through `frame_homographies`."""
    rng = np.random.default_rng(seed)
    tex = np.zeros((3 * H, 3 * W, 3), np.float32)
    for s in (4, 16, 48):  # multi-scale noise: corners at every scale for SIFT
        small = rng.uniform(0, 1, (3 * H // s + 1, 3 * W // s + 1, 3)).astype(np.float32)
        tex += cv2.resize(small, (3 * W, 3 * H), interpolation=cv2.INTER_CUBIC)
    tex = np.clip(tex / 3 * 255, 0, 255).astype(np.uint8)
    folder.mkdir(parents=True)
    centre = np.array([[1, 0, W], [0, 1, H], [0, 0, 1.0]])  # frame 0 = the middle of the texture
    for k, hk in enumerate(frame_homographies(n, seed)):
        img = cv2.warpPerspective(tex, hk @ np.linalg.inv(centre), (W, H), flags=cv2.INTER_LINEAR)
        cv2.imwrite(str(folder / f"{k:05d}.png"), img)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return DenseMatcher().eval()


# ---------------------------------------------------------------------- filtering
def two_view(seed=0, n=300):
    rng = np.random.default_rng(seed)
    K = np.array([[300, 0, 160], [0, 300, 120], [0, 0, 1.0]])
    X = np.c_[rng.uniform(-2, 2, n), rng.uniform(-1.5, 1.5, n), rng.uniform(4, 8, n)]
    a = 0.15
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    t = np.array([-0.8, 0.1, 0.1])
    x0 = (X @ K.T)[:, :2] / X[:, 2:]
    Xc = X @ R.T + t
    x1 = (Xc @ K.T)[:, :2] / Xc[:, 2:]
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    F = np.linalg.inv(K).T @ tx @ R @ np.linalg.inv(K)
    return x0 + rng.normal(0, 0.15, x0.shape), x1 + rng.normal(0, 0.15, x1.shape), F


def test_filtering_rejects_planted_outliers():
    x0, x1, F = two_view()
    rng = np.random.default_rng(1)
    m = 150  # a third of the matches are planted outliers, > 3 px from their epipolar line
    bad0 = rng.uniform([0, 0], [320, 240], (m * 3, 2))
    bad1 = rng.uniform([0, 0], [320, 240], (m * 3, 2))
    far = epipolar_distances(F, bad0, bad1).min(1) > 3
    bad0, bad1 = bad0[far][:m], bad1[far][:m]
    kp0 = np.concatenate([x0, bad0]).astype(np.float32)
    kp1 = np.concatenate([x1, bad1]).astype(np.float32)
    labels = {"kp0": kp0, "kp1": kp1, "conf": np.ones(len(kp0), np.float32)}
    out, _ = verify(labels, threshold=1.0, min_matches=30)
    kept_bad = np.isin(out["kp0"][:, 0], bad0[:, 0].astype(np.float32)).sum()
    kept_good = np.isin(out["kp0"][:, 0], x0[:, 0].astype(np.float32)).sum()
    assert kept_bad == 0
    assert kept_good >= 0.95 * len(x0)
    assert ((out["conf"] > 0.5) & (out["conf"] <= 1)).all()


def test_filtering_drops_pairs_without_enough_support():
    rng = np.random.default_rng(0)
    labels = {"kp0": rng.uniform(0, 300, (200, 2)).astype(np.float32),
              "kp1": rng.uniform(0, 300, (200, 2)).astype(np.float32), "conf": np.ones(200, np.float32)}
    out, _ = verify(labels, threshold=1.0, min_matches=60)  # pure noise: no geometry explains 60
    assert len(out["kp0"]) == 0


# ---------------------------------------------------------------------- propagation
def test_connected_components_exact():
    edges = np.array([[0, 1], [2, 3], [3, 5], [1, 6]])
    assert connected_components(7, edges).tolist() == [0, 0, 2, 2, 4, 2, 0]


def chain_labels(hs, pts0, rng, noise=0.1, gaps=(1, 2, 3)):
    """Nearby-pair labels of points pts0 (frame 0) seen through homographies hs."""
    pts = [apply_h(hk, pts0) for hk in hs]
    out = {}
    for i in range(len(hs)):
        for g in gaps:
            if i + g < len(hs):
                out[(i, i + g)] = {"kp0": (pts[i] + rng.normal(0, noise, pts0.shape)).astype(np.float32),
                                   "kp1": (pts[i + g] + rng.normal(0, noise, pts0.shape)).astype(np.float32),
                                   "conf": np.ones(len(pts0), np.float32)}
    return out


def test_propagation_through_homography_chain_gives_composed_mapping():
    rng = np.random.default_rng(0)
    hs = frame_homographies(16, seed=3)
    pts0 = rng.uniform(20, 300, (300, 2))
    out = propagate(chain_labels(hs, pts0, rng), 16, {"min_gap": 10, "max_gap": 15, "gap_step": 5})
    assert (0, 10) in out and (0, 15) in out and (5, 15) in out
    for (a, b), lab in out.items():
        assert b - a in (10, 15)
        expected = apply_h(hs[b] @ np.linalg.inv(hs[a]), lab["kp0"].astype(np.float64))
        err = np.linalg.norm(expected - lab["kp1"], axis=1)
        assert len(lab["kp0"]) >= 0.9 * len(pts0)
        assert np.median(err) < 0.3 and err.max() < 1.0


def test_propagation_drops_tracks_that_jump():
    rng = np.random.default_rng(0)
    hs = [np.eye(3)] * 4
    pts0 = np.array([[10.0, 10], [50, 50], [90, 20]])
    labels = chain_labels(hs, pts0, rng, noise=0.0, gaps=(1,))
    # a wrong match in pair (1, 2) links point 0 to point 1: their merged track holds two
    # different points of one frame and must vanish; point 2's track survives
    labels[(1, 2)]["kp1"][0] = labels[(1, 2)]["kp1"][1]
    tracks = build_tracks(labels, radius=1.0)
    survivors = {tuple(np.round(xy)) for xy, f in zip(tracks["xy"], tracks["frame"]) if f == 0}
    assert survivors == {(90.0, 20.0)}


# ---------------------------------------------------------------------- store
LABEL_SCRIPT = """
import sys, torch
from recon_match.model import DenseMatcher
from recon_match.selftrain.store import label_videos
torch.set_num_threads(1)
torch.manual_seed(0)
label_videos(sys.argv[1], sys.argv[2], DenseMatcher().eval(), {CONF}, clips=sys.argv[3:] or None,
             progress=False)
"""
CONF = {"label": {"gaps": [1], "max_size": 128, "model_matches": 300},
        "propagate": {"min_gap": 3, "max_gap": 3}}


def run_labelling(video, out, clips=()):
    script = LABEL_SCRIPT.replace("{CONF}", repr(CONF))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, str(video), str(out), *clips], env=env, cwd=ROOT)


def test_store_resumes_after_a_killed_run(tmp_path):
    video = tmp_path / "video"
    for c in range(4):
        write_clip(video / f"clip{c}", 5, seed=c)
    out = tmp_path / "labels"
    proc = run_labelling(video, out)
    deadline = time.time() + 120
    while not list(out.glob("clip*.npz")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()  # SIGKILL in the middle of labelling: no chance to clean up
    proc.wait()
    first = sorted(out.glob("clip*.npz"))
    assert 1 <= len(first) < 4, "the kill should land after the first clip and before the last"
    stamps = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in first}
    assert run_labelling(video, out).wait() == 0
    files = sorted(out.glob("*.npz"))
    assert [p.name for p in files] == [f"clip{c}.npz" for c in range(4)]
    assert not list(out.glob(".*tmp*"))
    for name, (mtime, data) in stamps.items():  # finished clips were skipped, not redone
        assert (out / name).stat().st_mtime_ns == mtime and (out / name).read_bytes() == data
    ref = tmp_path / "ref"  # an uninterrupted run gives the same labels (checked on two clips)
    check = [first[0].stem, "clip3"]
    assert run_labelling(video, ref, check).wait() == 0
    for name in check:
        a, b = read_clip(out / f"{name}.npz"), read_clip(ref / f"{name}.npz")
        assert a["meta"]["model"] == b["meta"]["model"]
        for k in ("pairs", "kind", "offsets", "kp0", "kp1", "conf"):
            np.testing.assert_array_equal(a[k], b[k])
        assert (a["kind"] == 1).any() and len(a["kp0"]) > 100  # propagated pairs were labelled


def test_store_relabels_when_the_model_changes(tmp_path):
    write_clip(tmp_path / "video" / "c", 3, seed=0)
    conf = {"label": {"gaps": [1], "max_size": 128, "model_matches": 200}, "propagate": {"min_gap": 3}}
    m0, m1 = tiny_model(0), tiny_model(1)
    label_videos(tmp_path / "video", tmp_path / "l", m0, conf, progress=False)
    path = tmp_path / "l" / "c.npz"
    t0 = path.stat().st_mtime_ns
    label_videos(tmp_path / "video", tmp_path / "l", m0, conf, progress=False)
    assert path.stat().st_mtime_ns == t0  # current: skipped
    label_videos(tmp_path / "video", tmp_path / "l", m1, conf, progress=False)
    assert read_clip(path)["meta"]["model"] == model_hash(m1) != model_hash(m0)


# ---------------------------------------------------------------------- dataset and loss
def test_dataset_augmentation_keeps_correspondences(tmp_path):
    video = tmp_path / "video"
    write_clip(video / "c", 6, seed=5)
    label_videos(video, tmp_path / "l", None, {"label": {"gaps": [1, 2]}, "propagate": {"min_gap": 4}},
                 progress=False)
    ds = PseudoPairDataset({"labels": tmp_path / "l", "video": video, "size": [64, 80], "max_keypoints": 64,
                            "min_keypoints": 10, "photometric_prob": 0.0, "min_crop": 0.5})
    diffs, shuffled = [], []
    for i in range(12):
        item = ds[i]
        assert item["image0"].shape == (3, 64, 80) and item["keypoints0"].shape == (64, 2)
        v = item["kp_valid"]
        assert v.sum() >= 5
        g0 = sample(item["image0"], item["keypoints0"][v])
        g1 = sample(item["image1"], item["keypoints1"][v])
        diffs.append((g0 - g1).abs().mean())
        shuffled.append((g0 - g1.roll(1, 0)).abs().mean())
        torch.testing.assert_close(ds[i]["keypoints1"], item["keypoints1"])  # pure function of index
    assert np.mean(diffs) < 0.35 * np.mean(shuffled)


def sample(image, kp):
    """Colours of image (3 x H x W) at pixel-centre points kp (N x 2), bilinear."""
    h, w = image.shape[1:]
    grid = ((kp + 0.5) / torch.tensor([w, h]) * 2 - 1)[None, None]
    return torch.nn.functional.grid_sample(image[None], grid, align_corners=False)[0, :, 0].T


def test_sparse_loss_is_small_at_the_models_own_matches():
    model = tiny_model(0)
    img = torch.rand(1, 3, 64, 64)
    out = model({"image0": img, "image1": img.flip(-1)})
    kp0 = torch.tensor([[[10.0, 12.0], [40.0, 30.0], [20.0, 50.0]]])
    from recon_match.selftrain.losses import sample_at
    own = sample_at(out["warp0_fine"], kp0, 2)
    batch = {"keypoints0": kp0, "keypoints1": own, "kp_valid": torch.tensor([[True, True, False]])}
    ok = sparse_losses(out, batch)
    batch["keypoints1"] = own + 3.0  # 4.2 px off: within the truncation of the fine level
    off = sparse_losses(out, batch)
    assert set(ok) == {"coarse", "mid", "fine", "cert_mid", "cert_fine", "total"}
    assert off["fine"] > ok["fine"] + 0.5
    out_w0 = out["warp0_fine"].detach().requires_grad_(True)
    loss = sparse_losses({**out, "warp0_fine": out_w0}, batch)["total"].sum()
    loss.backward()
    assert out_w0.grad.abs().sum() > 0


def test_mixed_dataset_draws_whole_batches_from_one_source():
    class Items(torch.utils.data.Dataset):
        def __init__(self, tag):
            self.tag = tag

        def __len__(self):
            return 1000

        def __getitem__(self, i):
            return self.tag

    mixed = MixedDataset(Items("synthetic"), Items("real"), weight=0.5, per_batch=4)
    batches = [{mixed[b * 4 + k] for k in range(4)} for b in range(50)]
    assert all(len(s) == 1 for s in batches)
    share = np.mean([s == {"real"} for s in batches])
    assert 0.3 < share < 0.7


@pytest.mark.parametrize("weight", [1.0])
def test_trainer_trains_on_pseudo_labels(tmp_path, weight):
    from recon_match.train import Trainer
    video = tmp_path / "video"
    write_clip(video / "c", 5, seed=2)
    label_videos(video, tmp_path / "l", None, {"label": {"gaps": [1, 2]}, "propagate": {"min_gap": 4}},
                 progress=False)
    conf = {"batch_size": 1, "num_workers": 0, "val_every": 10_000, "val_size": 1, "log_every": 1,
            "warmup_steps": 1, "data": {"size": [64, 64]},
            "real": {"weight": weight, "labels": str(tmp_path / "l"), "video": str(video), "min_keypoints": 10}}
    trainer = Trainer(tmp_path / "run", conf)
    assert trainer.train(max_steps=2) == 2
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and all(np.isfinite(float(x)) for x in log[-1].split(",")[4:])


def test_label_only_cli_writes_labels_and_no_training_run(tmp_path):
    from pipelines.cli import main
    video = tmp_path / "video"
    write_clip(video / "c", 5, seed=3)
    conf = tmp_path / "conf.json"
    conf.write_text('{"labelling": {"label": {"gaps": [1, 2], "max_size": 128, "model_matches": 200},'
                    ' "propagate": {"min_gap": 4}}}')
    out = tmp_path / "st"
    assert main(["selftrain", "--video", str(video), "--out", str(out), "--label-only",
                 "--config", str(conf)]) == 0
    labels = read_clip(out / "labels" / "c.npz")
    assert (labels["kind"] == 1).any() and len(labels["kp0"]) > 100
    assert sorted(p.name for p in out.iterdir()) == ["labels"]  # no rounds, no trainer folder
