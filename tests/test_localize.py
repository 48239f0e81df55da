"""Localization: camera strings, pose solver, 2D-3D aggregation, the map, the whole
localizer (SIFT and dense) on rendered scenes, resume, and CLI errors."""

import json
from pathlib import Path

import cv2
import numpy as np
import pycolmap
import pytest
from PIL import Image

from pipelines.cli import main as cli
from recon_match.evaluation import load_model
from recon_match.imageio import read_image, to_gray
from recon_match.localization import ReferenceMap, estimate_pose, main, parse_camera, pose_error
from recon_match.localization.mapping import triangulate_known_poses
from recon_match.localization.pose import aggregate
from conftest import require_trained_weights

CAM = pycolmap.Camera(model="PINHOLE", width=640, height=480, params=[500, 500, 320, 240])


@pytest.mark.parametrize("spec, message", [
    ("FOO,1,2", "unknown model"),
    ("PINHOLE,500,500,320", "takes 4 parameters"),
    ("PINHOLE,a,500,320,240", "must be numbers"),
    ("PINHOLE,inf,500,320,240", "finite"),
    ("SIMPLE_PINHOLE,-3,320,240", "positive"),
])
def test_bad_camera_strings_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_camera(spec, 640, 480)


def test_camera_string_is_parsed():
    cam = parse_camera("simple_radial,600,320,240,0.01", 640, 480)
    assert cam.model_name == "SIMPLE_RADIAL" and (cam.width, cam.height) == (640, 480)
    np.testing.assert_allclose(cam.params, [600, 320, 240, 0.01])


def _synthetic(n=200, outliers=0.3, seed=0):
    """Points in front of a known camera, projected (+ noise), a fraction replaced by junk."""
    rng = np.random.default_rng(seed)
    T = pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([0.1, -0.2, 0.05])), np.array([0.3, -0.1, 2.0]))
    xyz = rng.uniform([-2, -1.5, 3], [2, 1.5, 8], (n, 3))
    cam_pts = (T.matrix() @ np.c_[xyz, np.ones(n)].T).T
    uv = cam_pts[:, :2] / cam_pts[:, 2:] * 500 + [320, 240] - 0.5  # pixel-centre convention
    uv += rng.normal(0, 0.5, uv.shape)
    bad = rng.random(n) < outliers
    uv[bad] = rng.uniform([0, 0], [640, 480], (bad.sum(), 2))
    return uv, xyz, T


def test_pose_is_recovered_from_correspondences_with_outliers():
    uv, xyz, T = _synthetic()
    res = estimate_pose(uv, xyz, CAM)
    assert res["success"] and res["reason"] is None
    dt, dr = pose_error(res["cam_from_world"], T)
    assert dt < 0.02 and dr < 0.2
    assert 0.6 * len(uv) < res["num_inliers"] < 0.8 * len(uv)


def test_random_correspondences_are_not_localized():
    rng = np.random.default_rng(1)
    uv = rng.uniform([0, 0], [640, 480], (300, 2))
    xyz = rng.uniform([-2, -1.5, 3], [2, 1.5, 8], (300, 3))
    res = estimate_pose(uv, xyz, CAM)
    assert not res["success"] and "cam_from_world" not in res
    assert res["reason"].startswith(("too few inliers", "inlier ratio"))


def test_no_or_non_finite_correspondences_give_reasons():
    res = estimate_pose(np.zeros((0, 2)), np.zeros((0, 3)), CAM)
    assert res["reason"] == "no 2D-3D correspondences"
    uv, xyz, _ = _synthetic(n=30, outliers=0)
    uv[:20] = np.nan  # must never reach pycolmap
    res = estimate_pose(uv, xyz, CAM)
    assert not res["success"] and res["num_correspondences"] == 10
    with pytest.raises(ValueError, match="unknown pose option"):
        estimate_pose(uv, xyz, CAM, {"min_inlier": 3})


def test_aggregate_keeps_the_best_match_per_3d_point():
    a = {"query_xy": np.array([[1.0, 1], [2, 2]]), "point3D_ids": np.array([7, 8]), "scores": np.array([0.5, 0.9])}
    b = {"query_xy": np.array([[3.0, 3], [4, 4]]), "point3D_ids": np.array([7, 9]), "scores": np.array([0.8, 0.1])}
    empty = {"query_xy": np.zeros((0, 2)), "point3D_ids": np.zeros(0, np.int64), "scores": np.zeros(0)}
    out = aggregate([a, empty, b])
    got = {int(i): tuple(xy) for i, xy in zip(out["point3D_ids"], out["query_xy"])}
    assert got == {7: (3.0, 3.0), 8: (2.0, 2.0), 9: (4.0, 4.0)}


def _tiny_model(path: Path):
    """One posed image with two observed 3D points, written as a binary COLMAP model."""
    rec = pycolmap.Reconstruction()
    cam = pycolmap.Camera(model="PINHOLE", width=640, height=480, params=[500, 500, 320, 240], camera_id=1)
    rec.add_camera_with_trivial_rig(cam)
    im = pycolmap.Image(name="a.jpg", camera_id=1, image_id=1)
    im.points2D = pycolmap.Point2DList([pycolmap.Point2D(np.array([100.5, 50.5])),
                                        pycolmap.Point2D(np.array([300.5, 200.5])),
                                        pycolmap.Point2D(np.array([10.5, 10.5]))])
    rec.add_image_with_trivial_frame(im, pycolmap.Rigid3d())
    for idx, xyz in ((0, [0.0, 0, 5]), (1, [1.0, 1, 6])):
        track = pycolmap.Track()
        track.add_element(1, idx)
        pid = rec.add_point3D(np.array(xyz), track)
        rec.image(1).set_point3D_for_point2D(idx, pid)
    path.mkdir(parents=True, exist_ok=True)
    rec.write(str(path))
    return rec


def test_reference_map_uses_pixel_centres_and_max_error(tmp_path):
    _tiny_model(tmp_path / "sfm" / "model")
    ref = ReferenceMap.read(tmp_path / "sfm")  # finds the model/ sub-folder
    xy, ids = ref.observations("a.jpg")
    np.testing.assert_allclose(np.sort(xy, 0), [[100, 50], [300, 200]])  # COLMAP corner -> centre
    keep, pids = ref.nearest_observations("a.jpg", np.array([[101.0, 50], [10, 10], [299, 201]]), 2.0)
    assert keep.tolist() == [0, 2] and len(set(pids.tolist())) == 2  # 10,10 has no 3D point


def test_cli_reports_missing_model_and_bad_camera(tmp_path, caplog):
    (tmp_path / "q").mkdir()
    assert cli(["localize", "--model", str(tmp_path / "nope"), "--queries", str(tmp_path / "q"),
                "--out", str(tmp_path / "out")]) == 2
    assert "model folder does not exist" in caplog.text
    _tiny_model(tmp_path / "m")
    assert cli(["localize", "--model", str(tmp_path / "m"), "--queries", str(tmp_path / "q"),
                "--out", str(tmp_path / "out"), "--camera", "PINHOLE,500"]) == 2
    assert "PINHOLE takes 4 parameters" in caplog.text
    (tmp_path / "empty").mkdir()
    assert cli(["localize", "--model", str(tmp_path / "empty"), "--queries", str(tmp_path / "q"),
                "--out", str(tmp_path / "out")]) == 2
    assert "no COLMAP model" in caplog.text


# --------------------------------------------------------------------- end to end (aerial scene)
def _nearest_refs(gt_refs, gt_q, query, k):
    c = gt_q.find_image_with_name(query).projection_center()
    ims = sorted(gt_refs.images.values(), key=lambda im: np.linalg.norm(im.projection_center() - c))
    return [im.name for im in ims[:k]]


@pytest.fixture(scope="module")
def aerial():
    from recon_match.render.sample import ensure_sample_scene
    scene = Path(ensure_sample_scene("aerial"))
    return scene, load_model(scene / "gt"), load_model(scene / "queries_gt")


@pytest.fixture(scope="module")
def small_aerial_map(aerial, tmp_path_factory):
    """A map of the few references around two queries (fast to triangulate), plus a query
    folder holding those two and a procedural image that shows nothing of the scene."""
    from recon_match.data.sources import procedural_image
    scene, gt_refs, gt_q = aerial
    queries = sorted(im.name for im in gt_q.images.values())[:2]
    refs = sorted({r for q in queries for r in _nearest_refs(gt_refs, gt_q, q, 4)})
    work = tmp_path_factory.mktemp("aerial_small")
    triangulate_known_poses(gt_refs, refs, scene / "images", work / "map")
    qdir = work / "queries"
    qdir.mkdir()
    for q in queries:
        (qdir / q).write_bytes((scene / "queries" / q).read_bytes())
    junk = procedural_image(np.random.default_rng(3), 480, 640, kind="dead_leaves")
    Image.fromarray(junk).save(qdir / "unrelated.png")
    cams = {q: gt_q.cameras[gt_q.find_image_with_name(q).camera_id] for q in queries}
    cams["unrelated.png"] = cams[queries[0]]
    return {"model": work / "map" / "model", "images": scene / "images", "queries": qdir,
            "names": queries, "gt": gt_q, "cameras": cams, "gps": scene / "gps.csv", "work": work}


def _errors(log, gt, names):
    out = {}
    for n in names:
        q, t = log[n]["qvec"], log[n]["tvec"]
        T = pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([q[1], q[2], q[3], q[0]])), np.array(t))
        out[n] = pose_error(T, gt.find_image_with_name(n).cam_from_world())
    return out


def _check_outputs(out_dir, log):
    lines = (out_dir / "poses.txt").read_text().splitlines()
    assert sorted(ln.split()[0] for ln in lines) == sorted(n for n, e in log.items() if e["localized"])
    assert all(len(ln.split()) == 8 for ln in lines)
    assert json.loads((out_dir / "log.json").read_text()) == json.loads(json.dumps(log))


@pytest.mark.slow  # renders the aerial sample scene on first use (minutes on 2 busy cores)
def test_sift_localizer_recovers_poses_rejects_unrelated_query_and_resumes(small_aerial_map):
    m = small_aerial_map
    out = m["work"] / "out_sift"
    conf = {"matcher": "sift", "pairs": "gps", "num_pairs": 4}
    gps = m["work"] / "gps.csv"  # the unrelated image gets a position too: only matching can reject it
    gps.write_text(m["gps"].read_text() + "unrelated.png,0,0,60\n")
    log = main(conf, m["model"], m["queries"], out, image_dir=m["images"], cameras=m["cameras"], gps=gps)
    for n, (dt, dr) in _errors(log, m["gt"], m["names"]).items():
        assert dt < 0.5 and dr < 5, (n, dt, dr, log[n])
    bad = log["unrelated.png"]
    assert not bad["localized"] and bad["reason"] and "qvec" not in bad
    _check_outputs(out, log)
    again = main(conf, m["model"], m["queries"], out, image_dir=m["images"], cameras=m["cameras"], gps=gps)
    assert again == log  # nothing recomputed: seconds are identical


@pytest.mark.slow
def test_dense_localizer_rejects_unrelated_query(small_aerial_map):
    require_trained_weights(0.48)  # passes from the step-28,751 weights (0.490)
    m = small_aerial_map
    log = main({"pairs": "retrieval", "num_pairs": 2}, m["model"], m["queries"], m["work"] / "out_dense",
               image_dir=m["images"], cameras=m["cameras"], queries=["unrelated.png"])
    assert not log["unrelated.png"]["localized"] and "qvec" not in log["unrelated.png"]


def _colormap(name):
    """uint8 grey -> RGB through OpenCV's colormap `name` (as a false-colour camera shows it)."""
    code = getattr(cv2, f"COLORMAP_{name}")
    return lambda x: cv2.cvtColor(cv2.applyColorMap(x, code), cv2.COLOR_BGR2RGB)


def _retried(m, name, image, tag):
    """Localize `image` saved as query `name` without (0) and with (10**6) the retries."""
    qdir = m["work"] / tag
    qdir.mkdir(exist_ok=True)
    Image.fromarray(image).save(qdir / name)
    conf = {"pairs": "gps", "num_pairs": 4}
    return {b: main(conf | {"retry_below": b}, m["model"], qdir, m["work"] / f"out_{tag}{b}",
                    image_dir=m["images"], cameras=m["cameras"], gps=m["gps"])[name] for b in (0, 10**6)}


@pytest.mark.slow
def test_negative_query_is_localized_by_the_inverted_retry(small_aerial_map):
    """A query with reversed polarity (as a thermal camera's hot-is-black mode shows it)
    matches little; the retry as an inverted grey image localizes it."""
    require_trained_weights(0.48)
    m = small_aerial_map
    name = m["names"][0]
    runs = _retried(m, name, to_gray(255 - read_image(m["queries"] / name)), "negative")
    assert runs[0]["rendering"] == "original" and runs[10**6]["rendering"] == "inverted"
    assert runs[10**6]["num_inliers"] > 2 * runs[0]["num_inliers"]
    dt, dr = _errors({name: runs[10**6]}, m["gt"], [name])[name]
    assert dt < 5 and dr < 10  # the coarse threshold: grey matches are less precise (0.83 m)


@pytest.mark.slow
def test_rainbow_palette_query_is_localized_by_the_hue_retry(small_aerial_map):
    """A query shown through a rainbow palette (jet: brightness rises and falls along the
    scale) is read back as its hue and localized."""
    require_trained_weights(0.48)
    m = small_aerial_map
    name = m["names"][1]
    gray = cv2.cvtColor(read_image(m["queries"] / name), cv2.COLOR_RGB2GRAY)
    runs = _retried(m, name, _colormap("JET")(255 - gray), "jet")
    assert runs[10**6]["rendering"] in ("hue", "hue_inverted")
    assert runs[10**6]["num_inliers"] > 2 * runs[0]["num_inliers"]
    dt, dr = _errors({name: runs[10**6]}, m["gt"], [name])[name]
    assert dt < 5 and dr < 10


def test_hue_of_a_rainbow_palette_follows_the_scale():
    from recon_match.localization.renderings import alternative_renderings, hue_gray, is_false_colour
    ramp = np.tile(np.linspace(0, 255, 256).astype(np.uint8), (32, 1))
    for cmap in (_colormap("JET"), _colormap("TURBO")):
        img = cmap(ramp)
        assert is_false_colour(img)
        g = hue_gray(img)[0, :, 0].astype(float)
        inner = g[16:-16]  # turbo's dark ends fold back in hue
        assert np.all(np.diff(inner) >= -2) and inner[-1] - inner[0] > 150
        assert set(alternative_renderings(img)) == {"inverted", "hue", "hue_inverted"}
    grey = np.repeat(ramp[..., None], 3, -1)
    assert not is_false_colour(grey) and set(alternative_renderings(grey)) == {"inverted"}


@pytest.mark.slow
def test_dense_localizer_recovers_aerial_queries(aerial, tmp_path):
    """>= 90% of the aerial queries within (0.5 m, 5 deg) of the ground truth."""
    require_trained_weights(0.48)  # passes from the step-28,751 weights (0.490)
    scene, gt_refs, gt_q = aerial
    refs = sorted(im.name for im in gt_refs.images.values())
    triangulate_known_poses(gt_refs, refs, scene / "images", tmp_path / "map")
    names = sorted(im.name for im in gt_q.images.values())
    cams = {q: gt_q.cameras[gt_q.find_image_with_name(q).camera_id] for q in names}
    log = main({"pairs": "gps", "num_pairs": 4}, tmp_path / "map" / "model", scene / "queries",
               tmp_path / "out", image_dir=scene / "images", cameras=cams, gps=scene / "gps.csv")
    errs = _errors(log, gt_q, [n for n in names if log[n]["localized"]])
    good = sum(dt < 0.5 and dr < 5 for dt, dr in errs.values())
    assert good >= 0.9 * len(names), (good, len(names), errs)


# --------------------------------------------------------------------- Lift3D (query to 3D points)
def _plane_map(tmp_path, shifts=(0, 24), depth=10.0, f=500.0):
    """A textured fronto-parallel plane at z = `depth` seen by cameras translated along x so the
    image moves by `shifts` px: exact views (crops of one texture) and a hand-built model whose
    3D points are observed in every reference image."""
    from recon_match.data.sources import procedural_image
    tex = procedural_image(np.random.default_rng(5), 480, 640 + 64, kind="dead_leaves")
    images = tmp_path / "images"
    images.mkdir()
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(pycolmap.Camera(model="PINHOLE", width=640, height=480,
                                                    params=[f, f, 320, 240], camera_id=1))
    us, vs = np.meshgrid(np.arange(80, 560, 8.0), np.arange(40, 440, 8.0))
    uv = np.stack([us.ravel(), vs.ravel()], 1)  # pixel centres in the shift-0 view
    for k, s in enumerate(shifts, 1):
        Image.fromarray(tex[:, s:s + 640]).save(images / f"ref{k}.png")
        im = pycolmap.Image(name=f"ref{k}.png", camera_id=1, image_id=k)
        im.points2D = pycolmap.Point2DList([pycolmap.Point2D(p + [0.5 - s, 0.5]) for p in uv])
        rec.add_image_with_trivial_frame(im, pycolmap.Rigid3d(pycolmap.Rotation3d(), [-s * depth / f, 0, 0]))
    xyz = np.concatenate([(uv - [319.5, 239.5]) * depth / f, np.full((len(uv), 1), depth)], 1)
    for i, p in enumerate(xyz):
        track = pycolmap.Track()
        for k in range(1, len(shifts) + 1):
            track.add_element(k, i)
        pid = rec.add_point3D(p, track)
        for k in range(1, len(shifts) + 1):
            rec.image(k).set_point3D_for_point2D(i, pid)
    (tmp_path / "model").mkdir()
    rec.write(str(tmp_path / "model"))
    return tex, rec


def test_lift3d_descriptors_are_view_means_and_localize_a_new_view(tmp_path):
    from recon_match.data.sources import procedural_image
    from recon_match.coords import rescale
    from recon_match.localization.lift3d import Lift3DQueryMatcher, sample_features
    from recon_match.model import load_matcher
    tex, rec = _plane_map(tmp_path)
    net = load_matcher(device="cpu")
    queries = tmp_path / "queries"
    queries.mkdir()
    Image.fromarray(tex[:, 12:652]).save(queries / "between.png")  # camera at x = 12 px * 10 / 500
    Image.fromarray(procedural_image(np.random.default_rng(9), 480, 640, kind="dead_leaves")).save(
        queries / "unrelated.png")

    matcher = Lift3DQueryMatcher(net, ReferenceMap.read(tmp_path / "model"), tmp_path / "images")
    pts = matcher.points
    assert len(pts.ids) == len(rec.points3D)
    pid = int(pts.ids[7])  # one point: the normalised mean of its two views' sampled features
    views = []
    for name in ("ref1.png", "ref2.png"):
        xy, ids = matcher.refmap.observations(name)
        ref = matcher.prepare(matcher.refs.read(name))
        views.append(sample_features(ref["feats"]["mid"], rescale(xy[ids == pid], ref["scale"]), 8)[0])
    mean = (views[0] + views[1]) / (views[0] + views[1]).norm()
    np.testing.assert_allclose(pts.desc["mid"][pts.rows([pid])[0]].numpy(), mean.numpy(), atol=1e-5)

    cams = {n: rec.cameras[1] for n in ("between.png", "unrelated.png")}
    log = main({"matcher": "lift3d", "pairs": "retrieval", "num_pairs": 2}, tmp_path / "model", queries,
               tmp_path / "out", image_dir=tmp_path / "images", cameras=cams, net=net)
    ok = log["between.png"]
    assert ok["localized"], ok
    T = pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([*ok["qvec"][1:], ok["qvec"][0]])), np.array(ok["tvec"]))
    dt, dr = pose_error(T, pycolmap.Rigid3d(pycolmap.Rotation3d(), [-12 * 10 / 500, 0, 0]))
    assert dt < 0.05 and dr < 0.5, (dt, dr, ok)  # 1 px of image shift = 0.02 units here
    assert not log["unrelated.png"]["localized"] and "qvec" not in log["unrelated.png"]
