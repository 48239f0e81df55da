"""Ground-truth evaluation on hand-made pycolmap reconstructions with known answers."""

import numpy as np
import pycolmap
import pytest

from recon_match.evaluation import check_names, evaluate, load_model, pose_auc

N = 8
P = N * (N - 1) // 2  # all pairs


def _look_at(centre, target=np.zeros(3)):
    """World-to-camera (R, t) of a camera at `centre` looking at `target`, y down."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross([0.0, -1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ centre


def _ring_poses(n=N):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    centres = np.stack([4 * np.cos(angles), 0.5 * np.sin(3 * angles), 4 * np.sin(angles)], 1)
    return {f"img_{i:02d}.png": _look_at(c) for i, c in enumerate(centres)}


def _build(poses) -> pycolmap.Reconstruction:
    rec = pycolmap.Reconstruction()
    for i, (name, (R, t)) in enumerate(sorted(poses.items()), start=1):
        rec.add_camera_with_trivial_rig(pycolmap.Camera(
            camera_id=i, model="PINHOLE", width=640, height=480, params=[500, 500, 320, 240]))
        rec.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=i, image_id=i),
                                         pycolmap.Rigid3d(pycolmap.Rotation3d(R), t))
    return rec


def _rot(axis, deg):
    return pycolmap.Rotation3d(np.asarray(axis, float) / np.linalg.norm(axis) * np.radians(deg)).matrix()


def _similar(poses, scale=2.5, R_s=None, t_s=np.array([3.0, -1.0, 7.0])):
    """The same cameras in a world moved by x' = scale * R_s x + t_s."""
    R_s = _rot([0.3, 1.0, -0.2], 40) if R_s is None else R_s
    out = {}
    for name, (R, t) in poses.items():
        C = -R.T @ t
        R2 = R @ R_s.T
        out[name] = (R2, -R2 @ (scale * R_s @ C + t_s))
    return out


def test_pose_auc_exact_values():
    assert pose_auc([0.5, 2.0, np.inf, np.inf], [1]) == pytest.approx([0.1875])
    assert pose_auc([0.0] * 4, [1, 5]) == pytest.approx([1.0, 1.0])
    assert pose_auc([np.inf] * 3, [1, 10]) == pytest.approx([0.0, 0.0])
    with pytest.raises(ValueError):
        pose_auc([], [1])


def test_similar_reconstruction_is_perfect():
    gt_poses = _ring_poses()
    res = evaluate(_build(_similar(gt_poses)), _build(gt_poses))
    assert res["aligned"] and res["num_pairs"] == P
    assert res["auc"] == pytest.approx({"1": 100, "3": 100, "5": 100, "10": 100}, abs=1e-3)
    assert res["median_rotation_error_deg"] < 1e-5
    assert res["median_center_error"] < 1e-6
    assert res["registered_fraction"] == 1.0


def test_one_camera_rotated_by_two_degrees():
    gt_poses = _ring_poses()
    poses = _similar(gt_poses)
    name = "img_03.png"
    R, t = poses[name]
    C = -R.T @ t
    R2 = _rot([0.2, 1.0, 0.4], 2.0) @ R  # rotate about its own centre
    poses[name] = (R2, -R2 @ C)
    res = evaluate(_build(poses), _build(gt_poses))
    # N-1 pairs have error exactly 2 deg (rotation 2, translation direction <= 2), rest 0.
    good = (P - (N - 1)) / P
    ramp = 2 * (good + (good + 1 / P)) / 2  # trapezoid between the last 0 and the first 2
    expected = {"1": good, "3": (ramp + 1) / 3, "5": (ramp + 3) / 5, "10": (ramp + 8) / 10}
    assert res["auc"] == pytest.approx({k: 100 * v for k, v in expected.items()}, abs=1e-3)
    assert res["per_image"][name][0] == pytest.approx(2.0, abs=1e-4)
    assert res["per_image"][name][1] < 1e-6
    assert res["median_rotation_error_deg"] < 1e-5


@pytest.mark.parametrize("how", ["absent", "deregistered"])
def test_unregistered_image_is_a_failure(how):
    gt_poses = _ring_poses()
    poses = _similar(gt_poses)
    if how == "absent":
        del poses["img_05.png"]
        rec = _build(poses)
    else:
        rec = _build(poses)
        rec.deregister_frame(rec.find_image_with_name("img_05.png").frame_id)
    res = evaluate(rec, _build(gt_poses))
    expected = 100 * (P - (N - 1)) / P  # its N-1 pairs have infinite error
    assert res["auc"] == pytest.approx({k: expected for k in "1 3 5 10".split()}, abs=1e-3)
    assert res["registered_fraction"] == pytest.approx((N - 1) / N)
    assert res["per_image"]["img_05.png"] is None
    assert res["median_center_error"] < 1e-6


def test_alignment_is_robust_to_a_misplaced_camera():
    gt_poses = _ring_poses()
    poses = _similar(gt_poses, scale=1.0, R_s=np.eye(3), t_s=np.zeros(3))
    R, t = poses["img_00.png"]
    poses["img_00.png"] = (R, t + np.array([0.0, 0.0, 3.0]))  # moved 3 units along its axis
    res = evaluate(_build(poses), _build(gt_poses))
    assert res["per_image"]["img_00.png"][1] == pytest.approx(3.0, abs=1e-6)
    assert res["median_center_error"] < 1e-6  # the other seven still align exactly


def test_too_few_registered_images_cannot_align():
    gt_poses = _ring_poses()
    poses = {k: v for k, v in _similar(gt_poses).items() if k in ("img_00.png", "img_01.png")}
    res = evaluate(_build(poses), _build(gt_poses))
    assert not res["aligned"] and res["median_rotation_error_deg"] is None
    assert 0 < res["auc"]["10"] < 100 / P + 1e-6  # one good pair out of 28


@pytest.mark.parametrize("kind", ["text", "binary", "no_points"])
def test_load_model_roundtrip(tmp_path, kind):
    gt = _build(_ring_poses())
    if kind == "binary":
        gt.write_binary(tmp_path)
    else:
        gt.write_text(tmp_path)
    if kind == "no_points":
        (tmp_path / "points3D.txt").unlink()
    rec = load_model(tmp_path)
    assert evaluate(rec, gt)["auc"]["1"] == pytest.approx(100, abs=1e-3)


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not a COLMAP model"):
        load_model(tmp_path)
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 640\n")
    (tmp_path / "images.txt").write_text("garbage\n")
    with pytest.raises(ValueError, match=str(tmp_path.name)):
        load_model(tmp_path)


def test_check_names_names_the_missing_images():
    gt = _build(_ring_poses())
    check_names(gt, ["img_00.png", "img_01.png"])
    with pytest.raises(ValueError, match="other.jpg"):
        check_names(gt, ["img_00.png", "other.jpg"], gt_path="scene/gt")


def test_shared_ground_truth_models_load(shared_data):
    for scene in ["middlebury_dino", "strecha_fountain_p11", "strecha_herzjesu_p8"]:
        path = shared_data / "scenes" / scene / "gt"
        if not path.is_dir():
            pytest.skip(f"{path} not found")
        gt = load_model(path)
        res = evaluate(gt, gt)
        assert res["auc"]["1"] == pytest.approx(100, abs=1e-3) and res["aligned"]
