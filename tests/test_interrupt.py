"""Killed with SIGKILL at any point, training and reconstruction resume to the same result and
never leave a half-written checkpoint or model under its final name. (Matching's
kill-and-resume test is in test_matching.py.)"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pycolmap
import pytest
import torch

from recon_match.train import Trainer
from recon_match.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "sample_scenes" / "object"
# save every step (save_every_min 0), so a kill lands between or during checkpoint writes
TINY = {"data": {"size": [48, 64], "photo_root": None, "style_prob": 0.0}, "batch_size": 2,
        "val_size": 2, "val_every": 1000, "log_every": 1, "num_workers": 0, "warmup_steps": 2,
        "save_every_min": 0.0}
STEPS = 6

TRAIN = f"""
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {str(ROOT)!r})
from recon_match.train import Trainer
from tests.test_interrupt import TINY, STEPS
Trainer(sys.argv[1], TINY, resume=len(sys.argv) > 2).train(max_steps=STEPS)
"""



def kill_when(proc, ready, timeout=180):
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "finished before it could be killed:\n" + proc.stdout.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def checkpoint_step(path):
    try:
        return load_checkpoint(path)["state"]["step"]
    except (FileNotFoundError, RuntimeError):
        return None


@pytest.mark.slow  # three trainer processes: ~2 min on the shared machine
def test_training_killed_and_resumed_matches_uninterrupted(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(run)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = run / "checkpoint_last.pt"
    kill_when(proc, lambda: (checkpoint_step(last) or 0) >= 2)
    step = checkpoint_step(last)  # whatever moment the kill hit, the file is complete
    assert step is not None and 2 <= step < STEPS
    res = subprocess.run([sys.executable, str(script), str(run), "resume"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr

    ref = Trainer(tmp_path / "ref", TINY)
    assert ref.train(max_steps=STEPS) == STEPS
    got = load_checkpoint(last)
    assert got["state"]["step"] == STEPS
    expected = ref.net.state_dict()
    for k, v in got["model"].items():
        assert torch.equal(v, expected[k]), k
    # the loss log has each step once, as an uninterrupted run writes it
    steps = [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, STEPS + 1)), steps


def model_state(out):
    """'absent', or the number of images of the complete model under OUT/model (a half
    model fails to read)."""
    model = out / "model"
    if not model.exists():
        return "absent"
    return pycolmap.Reconstruction(str(model)).num_reg_images()


@pytest.mark.slow  # two SIFT reconstructions of the 20-view sample scene
def test_sfm_killed_during_mapping_leaves_no_half_model(tmp_path):
    if not (SCENE / "images").is_dir():
        pytest.skip(f"sample scene not rendered at {SCENE}")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipelines.cli", "sfm", str(SCENE / "images"), "--out", str(out),
           "--matcher", "sift", "--resize", "480", "--max-kps", "2048"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # the database is renamed into place once verified: mapping starts right after
    kill_when(proc, lambda: (out / "database.db").exists(), timeout=600)
    model_state(out)  # absent, or a model that reads completely
    assert not (out / "stats.json").exists()  # an unfinished run never looks complete
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "reusing verified matches" in res.stderr
    assert model_state(out) >= 16


def test_model_writes_are_atomic_under_sigkill(tmp_path):
    """A process rewriting OUT/model in a loop, killed at random moments: OUT/model is always
    absent or a complete model, never a partial one."""
    script = tmp_path / "write.py"
    script.write_text(f"""
import sys, numpy as np, pycolmap
sys.path.insert(0, {str(ROOT)!r})
from recon_match.sfm.mapping import write_model
rec = pycolmap.Reconstruction()
rec.add_camera_with_trivial_rig(pycolmap.Camera(model="PINHOLE", width=640, height=480,
                                                params=[500, 500, 320, 240], camera_id=1))
for i in range(1, 41):
    rec.add_image_with_trivial_frame(pycolmap.Image(name=f"im{{i}}.png", camera_id=1, image_id=i),
                                     pycolmap.Rigid3d())
rng = np.random.default_rng(0)
for p in rng.normal(size=(3000, 3)):
    rec.add_point3D(p, pycolmap.Track(), np.zeros(3, np.uint8))
print("ready", flush=True)
while True:
    write_model(rec, sys.argv[1])
""")
    out = tmp_path / "out"
    rng = random.Random(0)
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(out)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = model_state(out)
        assert state in ("absent", 40), state
        if state == 40:
            assert pycolmap.Reconstruction(str(out / "model")).num_points3D() == 3000
