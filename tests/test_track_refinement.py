"""Multi-view track refinement on a real pycolmap model of the rendered object scene: noisy
observations of true surface points are pulled back into agreement across views. Also:
calibrated cameras stay fixed through mapping and refinement."""

import copy

import numpy as np
import pycolmap
import pytest
from PIL import Image

from recon_match.evaluation import load_model
from recon_match.evaluation.metrics import relative_pose_errors
from recon_match.sfm.import_h5 import verify
from recon_match.sfm.mapping import run_mapping
from recon_match.sfm.track_refinement import merge_conf, refine_tracks

VIEWS = ["view_000.jpg", "view_001.jpg", "view_002.jpg", "view_003.jpg"]


def _noisy_model(scene, num_points=600, noise=1.2, seed=0, views=VIEWS):
    """Model with the GT poses of `views` and surface points seen (by depth test) in 2+ views,
    every observation displaced by `noise` px rms; and the GT model."""
    rng = np.random.default_rng(seed)
    gt = load_model(scene / "gt")
    ims = [gt.find_image_with_name(n) for n in views]
    depth = [np.load(scene / "depth" / n.replace(".jpg", ".npy")) for n in views]
    # surface points from the depth of the second view (pixel centres, world frame)
    h, w = depth[1].shape
    xy = rng.uniform([20, 20], [w - 20, h - 20], (num_points * 3, 2))
    z = depth[1][xy[:, 1].astype(int), xy[:, 0].astype(int)]
    xy, z = xy[z > 0][:num_points], z[z > 0][:num_points]
    cam1 = ims[1].cam_from_world()
    X = ims[1].camera.cam_from_img(np.floor(xy) + 0.5) * z[:, None]
    X = (np.c_[X, z] - cam1.translation) @ cam1.rotation.matrix()

    rec = pycolmap.Reconstruction()
    obs = [[] for _ in X]
    for i, im in enumerate(ims):
        T = im.cam_from_world()
        Xc = X @ T.rotation.matrix().T + T.translation
        uv = im.camera.img_from_cam(Xc, check_cheirality=False)
        col, row = np.floor(uv - 0.5).astype(int).T
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (Xc[:, 2] > 0)
        seen = np.zeros(len(X), bool)
        seen[inside] = np.abs(depth[i][row[inside], col[inside]] - Xc[inside, 2]) < 0.02
        pts = uv[seen] + rng.normal(0, noise / np.sqrt(2), (seen.sum(), 2))
        image = pycolmap.Image(name=im.name, camera_id=i + 1, image_id=i + 1)
        image.points2D = pycolmap.Point2DList([pycolmap.Point2D(p) for p in pts])
        cam = copy.copy(im.camera)
        cam.camera_id = i + 1
        rec.add_camera_with_trivial_rig(cam)
        rec.add_image_with_trivial_frame(image, T)
        for k, p in enumerate(np.flatnonzero(seen)):
            obs[p].append(pycolmap.TrackElement(i + 1, k))
    for x, track in zip(X, obs):
        if len(track) >= 2:
            rec.add_point3D(x, pycolmap.Track(track), np.zeros(3, np.uint8))
    return rec, gt


@pytest.fixture(scope="module")
def object_scene():
    from recon_match.render import ensure_sample_scene
    return ensure_sample_scene("object")


def test_refinement_makes_tracks_agree(object_scene):
    rec, gt = _noisy_model(object_scene)
    num_points = rec.num_points3D()
    assert num_points > 300
    adjusted = pycolmap.Reconstruction(rec)
    pycolmap.bundle_adjustment(adjusted, pycolmap.BundleAdjustmentOptions())
    # a small model: every image may lose its unplaced observations
    stats = refine_tracks(rec, object_scene / "images", {"min_image_observations": 0})

    # the NCC places about half the observations (texture, sharp peaks); the rest are dropped
    moved = stats["iterations"][0]["moved"]
    assert moved > 0.3 * (stats["observations_before"] - num_points)  # all but the references
    assert stats["observations_after"] < stats["observations_before"]
    assert rec.num_points3D() > 100
    # adjustment alone cannot remove the noise: the refined tracks agree, and the poses improve
    assert adjusted.compute_mean_reprojection_error() > 0.5
    assert rec.compute_mean_reprojection_error() < 0.2 * adjusted.compute_mean_reprojection_error()
    errors = np.median(relative_pose_errors(rec, gt, VIEWS))
    assert errors < 0.5 * np.median(relative_pose_errors(adjusted, gt, VIEWS))


def test_refinement_leaves_unsupported_models_alone(object_scene, tmp_path):
    """Images that do not show what the model says (here: noise) place almost nothing:
    the model stays exactly as mapped rather than losing its observations."""
    rng = np.random.default_rng(0)
    rec, _ = _noisy_model(object_scene, noise=0.3)
    for name in VIEWS:
        Image.fromarray(rng.integers(0, 255, (480, 640), dtype=np.uint8)).save(tmp_path / name)
    before = {(i, k): tuple(p.xy) for i in rec.reg_image_ids()
              for k, p in enumerate(rec.image(i).points2D) if p.has_point3D()}
    stats = refine_tracks(rec, tmp_path)
    assert stats["skipped"] and not stats["iterations"]
    after = {(i, k): tuple(p.xy) for i in rec.reg_image_ids()
             for k, p in enumerate(rec.image(i).points2D) if p.has_point3D()}
    assert after == before


def test_refinement_keeps_images_connected(object_scene):
    """An image keeps its unplaced observations when dropping them would leave it fewer
    than `min_image_observations`."""
    rec, _ = _noisy_model(object_scene)
    stats = refine_tracks(rec, object_scene / "images", {"min_image_observations": 10**6})
    assert stats["iterations"][0]["images_keeping_unplaced"] >= 2  # all but the references
    assert stats["iterations"][0]["not_placed"] > 0


def test_refinement_config_is_checked():
    assert merge_conf({"iterations": 1})["iterations"] == 1
    with pytest.raises(ValueError, match="unknown track_refinement option"):
        merge_conf({"iteration": 1})


def _database(rec, path, keep=lambda i, j: True):
    """COLMAP database with the observations of `rec` as keypoints, its cameras as calibrated
    priors and its tracks as verified matches (of the image pairs `keep` accepts)."""
    with pycolmap.Database.open(path) as db:
        for i in rec.reg_image_ids():
            cam = copy.copy(rec.image(i).camera)
            cam.has_prior_focal_length = True
            db.write_camera(cam, use_camera_id=True)
            db.write_image(pycolmap.Image(name=rec.image(i).name, camera_id=cam.camera_id,
                                          image_id=i), use_image_id=True)
            db.write_keypoints(i, np.array([p.xy for p in rec.image(i).points2D], np.float32))
        pairs = {}
        for p in rec.points3D.values():
            els = sorted((e.image_id, e.point2D_idx) for e in p.track.elements)
            for a in range(len(els)):
                for b in range(a + 1, len(els)):
                    pairs.setdefault((els[a][0], els[b][0]), []).append((els[a][1], els[b][1]))
        pairs = {ij: m for ij, m in pairs.items() if keep(*ij)}
        for (i, j), m in pairs.items():
            db.write_matches(i, j, np.array(m, np.uint32))
    names = {i: rec.image(i).name for i in rec.reg_image_ids()}
    verify(path, [(names[i], names[j]) for i, j in pairs])


def test_calibrated_cameras_stay_fixed(object_scene, tmp_path):
    """With known intrinsics, mapping and the refinement's adjustment leave the cameras as
    given; left free, the noise moves them (the flag is not a no-op)."""
    rec, _ = _noisy_model(object_scene, noise=2.0)
    given = {c.camera_id: c.params.copy() for c in rec.cameras.values()}
    _database(rec, tmp_path / "db.db")
    for fixed in (True, False):
        model, info = run_mapping(tmp_path / "db.db", object_scene / "images", tmp_path / f"w{fixed}",
                                  fixed_intrinsics=fixed)
        assert model.num_reg_images() == len(VIEWS) and info["intrinsics_fixed"] == fixed
        assert info["attempts"] == 1 and info["seed"] == 0
        same = [np.array_equal(c.params, given[c.camera_id]) for c in model.cameras.values()]
        assert all(same) if fixed else not any(same)
        refine_tracks(model, object_scene / "images", {"iterations": 1, "min_image_observations": 0},
                      fixed_intrinsics=fixed)
        same = [np.array_equal(c.params, given[c.camera_id]) for c in model.cameras.values()]
        assert all(same) if fixed else not any(same)


def test_mapping_retries_other_seeds_when_most_images_are_left_out(object_scene, tmp_path):
    """Of six views only the first three share matches: no seed registers a majority, so every
    retry runs and the first of the equally large models is kept; without retries one
    attempt is made."""
    views = [f"view_{i:03d}.jpg" for i in range(6)]
    rec, _ = _noisy_model(object_scene, views=views)
    _database(rec, tmp_path / "db.db", keep=lambda i, j: j <= 3)
    for retries in (2, 0):
        model, info = run_mapping(tmp_path / "db.db", object_scene / "images", tmp_path / f"w{retries}",
                                  num_images=len(views), seed=5, fixed_intrinsics=True,
                                  retries=retries)
        assert model.num_reg_images() == 3
        assert info == {"intrinsics_fixed": True, "seed": 5, "attempts": retries + 1}
