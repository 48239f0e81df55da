"""`recon-match evaluate`: two-view geometry on exact data, the results document and report
of real runs (quick mode on the sample object scene), resume, and skipping without data."""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pycolmap
import pytest

from pipelines import cli
from recon_match.evaluation.suites import SUITES
from recon_match.evaluation.suites.twoview import (corner_error, gt_relative_pose, homography,
                                                   pose_error, relative_pose)

ROOT = Path(__file__).resolve().parents[1]
OBJECT = ROOT / "sample_scenes" / "object"


def _camera():
    return pycolmap.Camera(model="PINHOLE", width=640, height=480, params=[500, 500, 320, 240])


def test_relative_pose_recovers_exact_motion():
    rng = np.random.default_rng(0)
    X = rng.uniform([-2, -2, 4], [2, 2, 8], (300, 3))
    R = cv2.Rodrigues(np.array([0.05, -0.2, 0.03]))[0]
    t = np.array([-1.0, 0.1, 0.2])
    cam = _camera()
    K = cam.calibration_matrix()

    def project(P):
        p = P @ K.T
        return p[:, :2] / p[:, 2:] - 0.5  # COLMAP corner origin -> our pixel centres

    kp0, kp1 = project(X), project(X @ R.T + t)
    kp1[:30] += rng.uniform(-40, 40, (30, 2))  # 10% outliers
    R_est, t_est = relative_pose(kp0, kp1, cam, cam, threshold_px=1.0)
    assert pose_error(R_est, t_est, R, t) < 0.1
    # a wrong motion is measured as wrong
    assert pose_error(R_est, t_est, R.T, t) > 10


def test_relative_pose_survives_degenerate_samples():
    """Real SIFT matches of Middlebury dino views 5/6 (long focal, repeated points) on which
    OpenCV's essential-matrix solver raises an assertion: a failed estimate, not a crash."""
    kp0 = [[151.24, 138.02], [154.14, 203.0], [171.46, 74.98], [189.67, 305.17], [218.42, 96.79],
           [248.1, 170.07], [248.9, 167.85], [314.77, 219.73], [318.13, 352.22], [340.2, 193.88],
           [347.48, 198.12], [381.73, 254.17], [508.5, 330.68], [508.63, 332.1]]
    kp1 = [[583.0, 304.91], [153.82, 256.37], [155.26, 115.15], [191.13, 329.96], [404.23, 177.69],
           [248.12, 250.52], [248.12, 250.52], [324.02, 291.38], [373.44, 368.94], [342.63, 281.07],
           [350.48, 284.15], [407.19, 262.65], [373.44, 368.94], [373.44, 368.94]]
    cam = pycolmap.Camera(model="PINHOLE", width=640, height=480, params=[3310.4, 3325.5, 316.73, 200.55])
    with pytest.raises(cv2.error):  # what the guard is for
        n0, n1 = (np.asarray(cam.cam_from_img(np.asarray(k) + 0.5)) for k in (kp0, kp1))
        cv2.findEssentialMat(n0, n1, np.eye(3), method=cv2.RANSAC, prob=0.99999, threshold=1 / 3318)
    est = relative_pose(np.array(kp0), np.array(kp1), cam, cam)
    assert est is None or (est[0].shape == (3, 3) and np.isfinite(est[1]).all())


def test_gt_relative_pose_composes_world_to_camera_poses():
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(pycolmap.Camera(camera_id=1, model="PINHOLE", width=640,
                                                    height=480, params=[500, 500, 320, 240]))
    R0, R1 = (cv2.Rodrigues(np.array(v))[0] for v in ([0.1, 0, 0], [0, 0.3, 0]))
    t0, t1 = np.array([0.0, 1, 2]), np.array([1.0, 0, 0])
    for i, (R, t) in enumerate(((R0, t0), (R1, t1)), start=1):
        rec.add_image_with_trivial_frame(pycolmap.Image(name=f"{i}.png", camera_id=1, image_id=i),
                                         pycolmap.Rigid3d(pycolmap.Rotation3d(R), t))
    R, t = gt_relative_pose(rec.images[1], rec.images[2])
    X = np.array([0.3, -0.2, 5.0])
    np.testing.assert_allclose(R @ (R0 @ X + t0) + t, R1 @ X + t1, atol=1e-9)


def test_homography_and_corner_error():
    H_gt = np.array([[1.1, 0.05, 12.0], [-0.03, 0.95, -7.0], [1e-4, -2e-4, 1.0]])
    rng = np.random.default_rng(1)
    kp0 = rng.uniform(0, 500, (200, 2))
    kp1 = cv2.perspectiveTransform(kp0[None], H_gt)[0]
    assert corner_error(homography(kp0, kp1), H_gt, 500, 400) < 1e-3
    shifted = np.array([[1, 0, 6.0], [0, 1, 0], [0, 0, 1]]) @ H_gt  # every corner 6 px to the right
    assert corner_error(shifted, H_gt, 500, 400) == pytest.approx(6.0)
    assert math.isinf(corner_error(None, H_gt, 500, 400))


def _check_document(doc, suites):
    assert set(doc) == {"version", "meta", "status", "results"}
    assert set(doc["status"]) == set(suites)
    for suite in suites:
        status = doc["status"][suite]
        assert status["status"] in ("done", "skipped", "failed")
        assert status["status"] != "failed", status["reason"]
        assert (status["reason"] is None) == (status["status"] == "done")
        for dataset, per_method in doc["results"][suite].items():
            for method, metrics in per_method.items():
                assert isinstance(metrics, dict) and metrics, (suite, dataset, method)


def _auc_in_range(metrics, keys):
    for k in keys:
        assert 0.0 <= metrics[k] <= 100.0, (k, metrics[k])


@pytest.fixture(scope="module")
def object_only(tmp_path_factory):
    """A scenes root holding only the sample object scene (the smallest quick run)."""
    if not (OBJECT / "gt").is_dir():
        pytest.skip(f"sample scene not rendered at {OBJECT}")
    root = tmp_path_factory.mktemp("scenes")
    (root / "object").symlink_to(OBJECT, target_is_directory=True)
    return root


def test_scenes_use_a_dataset_calibration_only_without_exif(tmp_path):
    """Photos without EXIF focal and GT cameras that all agree: that calibration, for both
    methods; cameras that differ, or photos with EXIF, keep the usual priors."""
    from PIL import Image
    from recon_match.evaluation.suites.scenes import calibration
    images, gt = tmp_path / "images", tmp_path / "gt"
    images.mkdir()
    gt.mkdir()
    rec = pycolmap.Reconstruction()
    for i in (1, 2):
        Image.new("RGB", (640, 480)).save(images / f"{i}.png")
        rec.add_camera_with_trivial_rig(pycolmap.Camera(model="PINHOLE", width=640, height=480,
                                                        params=[900, 910, 321, 239], camera_id=i))
        rec.add_image_with_trivial_frame(pycolmap.Image(name=f"{i}.png", camera_id=i, image_id=i),
                                         pycolmap.Rigid3d())
    rec.write_text(gt)
    assert calibration(images, ["1.png", "2.png"], gt) == "PINHOLE,900.0,910.0,321.0,239.0"
    rec.camera(2).params = [800, 810, 321, 239]
    rec.write_text(gt)
    assert calibration(images, ["1.png", "2.png"], gt) is None
    assert calibration(images, ["1.png"], None) is None
    rec.camera(2).params = [900, 910, 321, 239]
    rec.write_text(gt)
    from recon_match.render.sample import camera_exif
    Image.new("RGB", (640, 480)).save(images / "2.jpg", exif=camera_exif(np.diag([500.0, 500, 1]), 640, 480))
    assert calibration(images, ["1.png", "2.jpg"], gt) is None  # one photo has an EXIF focal


def test_quick_pairs_with_skips_and_resume(tmp_path, object_only, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--quick", "--suite", "pairs", "homography", "zeroshot", "--out", str(out),
            "--scenes-root", str(object_only), "--data-root", str(tmp_path / "no_data")]
    assert cli.main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    _check_document(doc, ["homography", "pairs", "zeroshot"])
    assert doc["meta"]["quick"] is True
    assert doc["status"]["homography"]["status"] == "skipped"
    assert doc["status"]["zeroshot"]["status"] == "skipped"  # no real domain in quick mode
    assert doc["status"]["pairs"]["status"] == "done"
    pairs = doc["results"]["pairs"]
    assert list(pairs) == ["object"] and set(pairs["object"]) == {"recon-match", "opencv_sift"}
    for metrics in pairs["object"].values():
        _auc_in_range(metrics, ["auc@5", "auc@10", "auc@20"])
        assert metrics["auc@5"] <= metrics["auc@10"] <= metrics["auc@20"]
        assert metrics["pairs"] == 4 and metrics["matches"] >= 0 and metrics["s/pair"] > 0
    # SIFT on a textured rendered scene: the estimator and GT conventions must agree
    assert pairs["object"]["opencv_sift"]["auc@20"] > 50
    report = (out / "report.md").read_text()
    assert "## pairs" in report and "| object | opencv_sift |" in report
    assert "skipped" in report and (out / "plots" / "pairs.png").is_file()
    assert "== pairs ==" in capsys.readouterr().out  # tables go to stdout

    finished = doc["status"]["pairs"]["finished"]
    assert cli.main(argv + ["--resume"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["status"]["pairs"]["finished"] == finished  # kept, not rerun
    assert again["results"]["pairs"] == pairs
    # resuming with other settings is refused instead of mixing results
    assert cli.main([a for a in argv if a != "--quick"] + ["--resume"]) == 2


def test_unknown_suite_is_rejected(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--suite", "nope", "--out", str(tmp_path)])


@pytest.mark.slow
def test_quick_mode_end_to_end(tmp_path):
    """The whole quick mode as a user runs it (a few minutes on 2 CPU cores)."""
    if not (OBJECT / "gt").is_dir():
        pytest.skip(f"sample scene not rendered at {OBJECT}")
    out = tmp_path / "eval"
    assert cli.main(["evaluate", "--quick", "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    _check_document(doc, SUITES)
    res = doc["results"]
    for suite in ("synthetic", "pairs", "scenes", "speed"):
        assert doc["status"][suite]["status"] == "done", doc["status"][suite]
    syn = res["synthetic"]["all"]
    assert 0 <= syn["recon-match"]["pck3"] <= 1 and syn["recon-match"]["epe"] >= 0
    assert 0 <= syn["opencv_sift"]["match_precision"] <= 1
    obj = res["scenes"]["object"]
    assert set(obj) == {"recon-match", "colmap_sift"}
    for metrics in obj.values():
        assert 0 <= metrics["registered"] <= metrics["images"] == 6
    speed = next(v for k, v in res["speed"].items() if k.endswith("batch 1"))
    for method in ("recon-match", "kornia_loftr"):
        assert speed[method]["pairs/s"] > 0 and speed[method]["peak_rss_mb"] > 50
    for suite in SUITES:
        assert f"## {suite}" in (out / "report.md").read_text()


def test_zeroshot_styles_pairs_are_styled_undistorted_homographies(tmp_path):
    """The zero-shot bench's suite settings: homography pairs only, every image1 styled, and
    every pair with an exact homography, so each counts towards success."""
    from argparse import Namespace

    from bench.zeroshot_styles import rows_for, suite_conf
    from recon_match.evaluation.suites import synthetic
    from recon_match.evaluation.suites.base import Context

    conf = suite_conf(Namespace(pairs=3, max_rotation=60.0, max_scale=2.5))
    res = synthetic.run(Context(out=tmp_path, data_root=None, scenes_root=None, quick=True),
                        {**conf, "quick_pairs_per_generator": 3})
    assert {g for g in res if g.startswith("gen/")} == {"gen/homography"}
    assert "style/none" not in res
    assert res["all"]["recon-match"]["h_pairs"] == res["all"]["opencv_sift"]["h_pairs"] == 3
    rows = rows_for("recon-match", res)
    assert rows and all(r["group"].startswith("style") and r["pairs"] >= 1 for r in rows)
