"""The hloc plugin against upstream hloc: registration, the matcher contract, hloc's own
match_dense + reconstruction on the object sample scene, and the drop-in's files as hloc
reads them. Tests needing hloc skip when it is not installed."""

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycolmap
import pytest
import torch

import hloc_plugins
from recon_match import h5io
from recon_match.geometry import warp_from_depth
from recon_match.imageio import read_image
from recon_match.model import WEIGHTS_PATH

ROOT = Path(__file__).resolve().parents[1]
HLOC_REASON = ("hloc is not installed; install it from its git repository "
               "(cvg/Hierarchical-Localization) to run the hloc plugin tests")
RESIZE = 416  # object scene views are 640 x 480
WINDOW = 2  # neighbours each side in the ring of views


def _need_weights():
    if not WEIGHTS_PATH.is_file():
        pytest.skip(f"no shipped weights at {WEIGHTS_PATH}: the untrained matcher finds no "
                    f"reliable matches")


@pytest.fixture(scope="module")
def hloc():
    pytest.importorskip("hloc", reason=HLOC_REASON)
    hloc_plugins.register(torchvision_stand_in=True)
    from hloc import match_dense, matchers, reconstruction
    from hloc.utils import io, parsers
    return {"match_dense": match_dense, "matchers": matchers, "reconstruction": reconstruction,
            "io": io, "parsers": parsers}


@pytest.fixture(scope="module")
def scene():
    from recon_match.render.sample import ensure_sample_scene
    return ensure_sample_scene("object")


@pytest.fixture(scope="module")
def pairs(scene, tmp_path_factory):
    from recon_match.pairs import main as make_pairs
    path = tmp_path_factory.mktemp("pairs") / "pairs-window.txt"
    return make_pairs(scene / "images", path, method="sequential", window=WINDOW)


def _conf(hloc):
    conf = copy.deepcopy(hloc["match_dense"].confs["recon_dense_fast"])
    conf["preprocessing"]["resize_max"] = RESIZE
    return conf


def test_importing_our_packages_needs_no_hloc():
    code = ("import sys; sys.modules['hloc'] = None\n"
            "import recon_match, hloc_plugins, hloc_plugins.confs, hloc_plugins.dropin\n"
            "try:\n    hloc_plugins.register()\nexcept ImportError as e:\n    print(e)\n"
            "else:\n    raise SystemExit('register() worked without hloc')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "cvg/Hierarchical-Localization" in run.stdout


def test_importing_plugins_does_not_touch_hloc():
    code = "import sys, hloc_plugins; print('hloc' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_dynamic_load_finds_plugin_and_confs(hloc):
    from hloc.utils.base_model import BaseModel, dynamic_load
    assert hloc_plugins.register_matcher() is hloc_plugins.register_matcher()
    Model = dynamic_load(hloc["matchers"], "recon_dense")
    assert issubclass(Model, BaseModel) and Model.__name__ == "ReconDense"
    for name in hloc_plugins.CONFS:
        conf = hloc["match_dense"].confs[name]
        assert conf["model"]["name"] == "recon_dense"
        assert conf["preprocessing"]["dfactor"] == 16
        assert conf["max_error"] <= conf["cell_size"]
    with pytest.raises(ValueError, match="bogus"):
        Model({"name": "recon_dense", "bogus": 1})


@pytest.mark.parametrize("grayscale", [False, True])
def test_matcher_follows_hloc_dense_contract(hloc, scene, grayscale):
    """keypoints in the (resized) input images, scores in [0, 1], and, with the shipped
    weights, matches that agree with the ground-truth depth."""
    from hloc.utils.base_model import dynamic_load
    Model = dynamic_load(hloc["matchers"], "recon_dense")
    model = Model({"name": "recon_dense", "max_num_matches": 800}).eval()
    names = ["view_000.jpg", "view_001.jpg"]
    images = [read_image(scene / "images" / n, grayscale=grayscale) for n in names]
    data = {f"image{i}": torch.from_numpy(im).float().div(255).reshape(
        1, *im.shape[:2], -1).permute(0, 3, 1, 2) for i, im in enumerate(images)}
    with torch.no_grad():
        pred = model(data)
    n = len(pred["scores"])
    assert n <= 800
    h, w = images[0].shape[:2]
    for k in ("keypoints0", "keypoints1"):
        kp = pred[k]
        assert kp.shape == (n, 2) and kp.dtype == torch.float32 and torch.isfinite(kp).all()
        assert (kp >= -0.5).all() and (kp[:, 0] <= w - 0.5).all() and (kp[:, 1] <= h - 0.5).all()
    assert ((pred["scores"] >= 0) & (pred["scores"] <= 1)).all()
    _need_weights()
    assert n >= 200
    err = _gt_errors(scene, names, pred["keypoints0"].numpy(), pred["keypoints1"].numpy())
    assert np.median(err) < 2.0, np.median(err)


def _gt_errors(scene, names, kp0, kp1):
    """Pixel distance between kp1 and where the ground truth sends kp0 (visible points)."""
    gt = pycolmap.Reconstruction()
    gt.read_text(str(scene / "gt"))
    ims = {im.name: im for im in gt.images.values()}
    K, T, D = [], [], []
    for n in names:
        im = ims[n]
        K.append(gt.cameras[im.camera_id].calibration_matrix() - np.array(
            [[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]))  # COLMAP corner origin -> pixel centres
        T.append(np.vstack([im.cam_from_world().matrix(), [0, 0, 0, 1]]))
        D.append(np.load(scene / "depth" / f"{Path(n).stem}.npy"))
    warp, valid = warp_from_depth(D[0], K[0], T[0], K[1], T[1], D[1])
    ij = np.clip(np.round(kp0).astype(int), 0, [D[0].shape[1] - 1, D[0].shape[0] - 1])
    ok = valid[ij[:, 1], ij[:, 0]]
    assert ok.mean() > 0.8, "most matches should be on surfaces visible in both views"
    return np.linalg.norm(warp[ij[ok, 1], ij[ok, 0]] - kp1[ok], axis=1)


@pytest.fixture(scope="module")
def hloc_run(hloc, scene, pairs, tmp_path_factory):
    """hloc's own match_dense.main + reconstruction.main with our plugin."""
    _need_weights()
    out = tmp_path_factory.mktemp("hloc")
    features, matches = hloc["match_dense"].main(_conf(hloc), pairs, scene / "images",
                                                 export_dir=out)
    rec = hloc["reconstruction"].main(out / "sfm", scene / "images", pairs, features, matches)
    return {"features": features, "matches": matches, "rec": rec}


@pytest.mark.slow
def test_hloc_match_dense_and_reconstruction_register_all_views(hloc_run, scene):
    rec = hloc_run["rec"]
    num_images = len(list((scene / "images").iterdir()))
    assert rec is not None and rec.num_reg_images() == num_images
    assert rec.compute_mean_track_length() > 2.5
