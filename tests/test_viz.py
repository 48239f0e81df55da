"""Pictures: 3D scenes from real pycolmap reconstructions (rendered with the real Open3D
renderer when it can run here), PLY export, match pictures, plots and reports."""

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from PIL import Image

from pipelines.cli import main as cli
from recon_match.geometry import backproject, to_4x4
from recon_match.viz import export, matches, plots, report, scene3d
from recon_match.viz import render as viz_render

ROOT = Path(__file__).resolve().parents[1]
GREEN, BLUE = (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
BACKGROUND = (0.93, 0.93, 0.93)


@pytest.fixture(scope="module")
def rec():
    """A real synthetic reconstruction: 10 cameras around 400 points, points coloured grey."""
    opts = pycolmap.SyntheticDatasetOptions()
    opts.num_points3D, opts.num_rigs, opts.num_frames_per_rig = 400, 1, 10
    opts.camera_width, opts.camera_height = 640, 480
    pycolmap.set_random_seed(0)  # synthesize_dataset is random: fix the layout the checks assume
    rec = pycolmap.synthesize_dataset(opts)
    for p in rec.points3D.values():
        p.color = np.array([60, 60, 60], np.uint8)
    return rec


@pytest.fixture(scope="session")
def open3d_renders():
    """Skip unless open3d imports and its offscreen renderer works (probed in a subprocess:
    a machine without Vulkan can crash the process rather than raise)."""
    probe = textwrap.dedent("""
        import numpy as np
        from recon_match.viz.render import render_scene, frame_view
        from recon_match.viz.scene3d import Scene
        s = Scene(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((0, 3)), np.zeros((0, 2), int),
                  np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4, 4)), np.zeros(0, bool), [], 1.0)
        assert render_scene(s, conf={"size": (64, 48)}).shape == (48, 64, 3)
    """)
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        pytest.skip(f"open3d cannot render here: {(r.stderr or r.stdout).strip()[-300:]}")


def _query_pose(rec):
    """A query 0.3 units beside the first image, same orientation."""
    im = rec.images[min(rec.images)]
    T = to_4x4(im.cam_from_world().matrix())
    T[:3, 3] += [0.3, 0.0, 0.0]
    return T


def _colored(img, rgb, tol=12):
    return np.all(np.abs(img.astype(int) - np.array(rgb) * 255) <= tol, axis=-1)


# --- scene construction (numpy, no open3d) ---------------------------------------------------

def test_scene_has_every_point_and_camera(rec):
    q = _query_pose(rec)
    scene = scene3d.scene_from_reconstruction(rec, {"query.jpg": q}, {"query_color": BLUE})
    n = rec.num_reg_images()
    assert len(scene.points) == rec.num_points3D()
    assert len(scene.centers) == n + 1 and scene.is_query.sum() == 1
    assert len(scene.lines) == (n + 1) * len(scene3d.FRUSTUM_EDGES)
    for name, c in zip(scene.names, scene.centers):
        if name != "query.jpg":
            im = rec.find_image_with_name(name)
            np.testing.assert_allclose(c, im.projection_center(), atol=1e-9)
    np.testing.assert_allclose(scene.line_colors[scene.camera_lines(n)], np.tile(BLUE, (10, 1)))
    # The far rectangle of each frustum projects onto the image corners at the chosen depth.
    im = rec.images[min(rec.images)]
    cam = rec.cameras[im.camera_id]
    i = scene.names.index(im.name)
    corners = scene.line_points[i * 6 + 1:i * 6 + 5]
    uv = np.array([cam.img_from_cam(im.cam_from_world() * p) for p in corners])
    if cam.model.name == "PINHOLE":
        np.testing.assert_allclose(uv, [[0, 0], [640, 0], [640, 480], [0, 480]], atol=1e-6)
    depth = (corners - im.projection_center()) @ im.cam_from_world().rotation.matrix()[2]
    np.testing.assert_allclose(depth, scene.frustum_scale, rtol=1e-9)


def test_auto_frustum_scale_follows_the_scene(rec):
    scene = scene3d.scene_from_reconstruction(rec)
    extent = scene3d.scene_extent(scene.centers, scene.points)
    assert 0.01 * extent < scene.frustum_scale <= 0.05 * extent + 1e-12
    big = scene3d.scene_from_reconstruction(rec, conf={"frustum_scale": 2.5})
    assert big.frustum_scale == 2.5
    with pytest.raises(ValueError, match="unknown viz options"):
        scene3d.scene_from_reconstruction(rec, conf={"frustum_sacle": 1})


def test_read_poses_round_trip_and_errors(tmp_path, rec):
    im = rec.images[min(rec.images)]
    T = im.cam_from_world()
    x, y, z, w = T.rotation.quat
    path = tmp_path / "poses.txt"
    path.write_text(f"# comment\n\nq/1.jpg {w} {x} {y} {z} {' '.join(map(str, T.translation))}\n")
    poses = scene3d.read_poses(path)
    np.testing.assert_allclose(poses["q/1.jpg"], to_4x4(T.matrix()), atol=1e-12)
    path.write_text("a.jpg 1 0 0\n")
    with pytest.raises(ValueError, match=r"poses.txt:1"):
        scene3d.read_poses(path)


def test_frame_view_contains_every_frustum(rec):
    scene = scene3d.scene_from_reconstruction(rec, {"q.jpg": _query_pose(rec)})
    view = viz_render.frame_view(scene, {"size": (400, 300)})
    uv, z = view.project(scene.line_points)
    assert (z > 0).all()
    assert (uv >= 0).all() and (uv[:, 0] <= 399).all() and (uv[:, 1] <= 299).all()
    # Tight: the frame is filled to the margin on at least one axis.
    assert uv[:, 0].min() < 0.1 * 400 or uv[:, 1].min() < 0.1 * 300


def test_viz_imports_and_explains_without_open3d(tmp_path):
    code = textwrap.dedent(f"""
        import sys; sys.modules["open3d"] = None  # as if open3d were not installed
        import numpy as np, pycolmap
        from recon_match.viz import export, matches, plots, render, report, scene3d
        o = pycolmap.SyntheticDatasetOptions(); o.num_points3D = 20
        scene = scene3d.scene_from_reconstruction(pycolmap.synthesize_dataset(o))
        export.export_scene(scene, r"{tmp_path / 'p.ply'}")
        try:
            render.render_scene(scene)
        except ImportError as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'pip install "recon-match[viz]"' in r.stdout
    assert "libusb-1.0-0 libvulkan1 mesa-vulkan-drivers" in r.stdout
    assert (tmp_path / "p.ply").is_file() and (tmp_path / "p_cameras.ply").is_file()


# --- PLY export --------------------------------------------------------------------------

def test_ply_round_trips_through_open3d(tmp_path, rec):
    o3d = pytest.importorskip("open3d", reason="open3d not installed")
    scene = scene3d.scene_from_reconstruction(rec)
    pts_path, cams_path = export.export_scene(scene, tmp_path / "model.ply")
    pcd = o3d.io.read_point_cloud(str(pts_path))
    assert len(pcd.points) == rec.num_points3D()
    np.testing.assert_allclose(np.asarray(pcd.points), scene.points, atol=1e-12)
    np.testing.assert_allclose(np.asarray(pcd.colors), scene.point_colors, atol=1 / 255)
    ls = o3d.io.read_line_set(str(cams_path))
    assert len(ls.lines) == len(scene.lines) == 10 * rec.num_reg_images()
    np.testing.assert_array_equal(np.asarray(ls.lines), scene.lines)
    np.testing.assert_allclose(np.asarray(ls.colors), scene.line_colors, atol=1 / 255)
    with pytest.raises(ValueError, match=r"\.ply"):
        export.export_scene(scene, tmp_path / "model.txt")


# --- headless rendering --------------------------------------------------------------------

def _check_render(img, scene, view):
    """Share of non-background pixels, and each camera's frustum drawn where the view projects
    it (its apex pixel neighbourhood holds frustum-coloured pixels)."""
    share = 1 - _colored(img, BACKGROUND, tol=1).mean()
    for i, c in enumerate(scene.centers):
        uv, z = view.project(c[None])
        u, v = np.round(uv[0]).astype(int)
        assert 0 <= u < view.width and 0 <= v < view.height and z[0] > 0
        color = BLUE if scene.is_query[i] else GREEN
        window = img[max(v - 4, 0):v + 5, max(u - 4, 0):u + 5]
        assert _colored(window, color).sum() >= 3, f"camera {scene.names[i]} not drawn at {u, v}"
    return share


def test_headless_render_shows_points_and_every_camera(tmp_path, rec, open3d_renders):
    scene = scene3d.scene_from_reconstruction(rec, {"q.jpg": _query_pose(rec)},
                                              {"camera_color": GREEN, "query_color": BLUE})
    view = viz_render.frame_view(scene, {"size": (640, 480)})
    img = viz_render.render_scene(scene, tmp_path / "r.png", view=view, conf={"size": (640, 480)})
    assert img.shape == (480, 640, 3)
    assert np.asarray(Image.open(tmp_path / "r.png")).shape == (480, 640, 3)
    share = _check_render(img, scene, view)
    assert 0.005 < share < 0.3, share
    assert _colored(img, (60 / 255,) * 3, tol=2).sum() > 400 * 4  # points of ~3 x 3 px
    assert _colored(img, BACKGROUND, tol=1)[0].all()  # the exact background colour


def _object_scene_with_points(folder: Path, views=4, step=8):
    """The object sample scene's ground-truth cameras with points lifted from a few depth maps
    (the GT model has no points), each point coloured by its pixel."""
    from recon_match.evaluation.gt import load_model
    gt = load_model(folder / "gt")
    for image in sorted(gt.images.values(), key=lambda im: im.name)[::max(len(gt.images) // views, 1)]:
        depth = np.load(folder / "depth" / f"{Path(image.name).stem}.npy")[::step, ::step]
        rgb = np.asarray(Image.open(folder / "images" / image.name))[::step, ::step]
        K = gt.cameras[image.camera_id].calibration_matrix().copy()
        K[:2, 2] -= 0.5  # COLMAP corner origin -> pixel centres
        K[:2] /= step  # pixel j of the subsampled grid is pixel centre j * step
        xyz = backproject(depth, K, to_4x4(image.cam_from_world().matrix()))
        ok = np.isfinite(depth) & (depth > 0)
        for x, c in zip(xyz[ok], rgb[ok]):
            gt.add_point3D(x, pycolmap.Track(), c)
    return gt


def test_headless_render_of_object_sample_scene(tmp_path, open3d_renders):
    folder = ROOT / "sample_scenes" / "object"
    if not (folder / "gt" / "cameras.txt").is_file():
        pytest.skip(f"{folder} not rendered yet (recon-match render renders it)")
    rec = _object_scene_with_points(folder)
    scene = scene3d.scene_from_reconstruction(rec, conf={"camera_color": GREEN})
    view = viz_render.frame_view(scene)
    img = viz_render.render_scene(scene, tmp_path / "object.png", view=view)
    share = _check_render(img, scene, view)
    assert 0.05 < share < 0.8, share


def test_cli_viz_writes_png_and_ply(tmp_path, rec, open3d_renders):
    model = tmp_path / "sfm" / "model"
    model.mkdir(parents=True)
    rec.write(model)
    q = _query_pose(rec)
    x, y, z, w = pycolmap.Rotation3d(q[:3, :3]).quat
    (tmp_path / "poses.txt").write_text(f"q.jpg {w} {x} {y} {z} {q[0, 3]} {q[1, 3]} {q[2, 3]}\n")
    rc = cli(["viz", str(tmp_path / "sfm"), "--png", str(tmp_path / "v.png"), "--size", "320",
              "240", "--ply", str(tmp_path / "v.ply"), "--queries", str(tmp_path / "poses.txt")])
    assert rc == 0
    assert Image.open(tmp_path / "v.png").size == (320, 240)
    assert (tmp_path / "v_cameras.ply").is_file()
    assert cli(["viz", str(tmp_path / "missing")]) == 2


# --- match pictures ------------------------------------------------------------------------

def _count_line_colors(pic, x0, x1):
    """Distinct non-white colours in columns x0..x1 (the gap between the two images, which
    only match lines cross)."""
    strip = pic[:, x0:x1].reshape(-1, 3)
    strip = strip[~np.all(strip == 255, axis=1)]
    return len(np.unique(strip, axis=0))


def test_draw_matches_size_and_one_line_per_match():
    im0, im1 = np.zeros((80, 100, 3), np.uint8), np.zeros((60, 120), np.float32)
    n = 7
    k0 = np.c_[np.full(n, 50.0), np.linspace(5, 55, n)]
    k1 = np.c_[np.full(n, 30.0), np.linspace(5, 55, n)]
    cert = np.linspace(0, 1, n)
    pic = matches.draw_matches(im0, im1, k0, k1, certainty=cert, conf={"dot_radius": 0})
    assert pic.shape == (80, 100 + 8 + 120, 3)
    assert _count_line_colors(pic, 100, 108) == n
    strip = pic[:, 100:108].reshape(-1, 3)
    np.testing.assert_array_equal(np.unique(strip[~np.all(strip == 255, 1)], axis=0),
                                  np.unique(matches.match_colors(certainty=cert), axis=0))


def test_draw_matches_caps_lines_and_colours_by_error():
    im = np.full((100, 100, 3), 200, np.uint8)
    n = 500
    k = np.c_[np.full(n, 50.0), np.linspace(0, 99, n)]
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 200, (n, 3)).astype(np.uint8)  # (almost surely) all distinct
    pic = matches.draw_matches(im, im, k, k, colors=colors, conf={"max_lines": 40, "dot_radius": 0})
    assert _count_line_colors(pic, 100, 108) == 40
    err = np.array([0.0, 10.0])
    good, bad = matches.match_colors(errors=err)
    assert good[1] > good[0] and bad[0] > bad[1]  # green for 0 px, red for >= max_error


def test_warp_and_dense_panel():
    rng = np.random.default_rng(0)
    im1 = rng.integers(0, 255, (48, 64, 3)).astype(np.uint8)
    ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
    identity = np.stack([xs, ys], -1)
    np.testing.assert_array_equal(matches.warp_image(im1, identity), im1)
    cert = np.zeros((48, 64), np.float32)
    cert[:, :32] = 1
    out = matches.warp_image(im1, identity, cert)
    np.testing.assert_array_equal(out[:, :32], im1[:, :32])
    assert (out[:, 32:] == 128).all()
    panel = matches.dense_panel(im1, im1, identity, cert)
    assert panel.shape == (48, 4 * 64 + 3 * 8, 3)


# --- plots and report ---------------------------------------------------------------------

def test_plot_training_and_report(tmp_path):
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", "loss_fine", "lr", "val_pck3"])
        for s in range(0, 200, 10):
            w.writerow([s, 2 / (s + 1), 1 / (s + 1), 1e-3, 0.1 * s / 20 if s % 50 == 0 else ""])
    png = plots.plot_training(log, tmp_path / "curves.png")
    pic = np.asarray(Image.open(png).convert("RGB"))
    assert pic.shape[1] == 1500 and (pic < 200).any()  # three panels, something drawn
    bars = plots.plot_bars({"dense": {"AUC@5": 51.0, "AUC@10": 72.0}, "SIFT": {"AUC@5": 74.2}},
                           tmp_path / "bars.png", title="pose AUC")
    with pytest.raises(ValueError, match="'step'"):
        plots.plot_training(log, tmp_path / "x.png", x="iteration")

    r = report.Report(tmp_path / "out" / "report.md", "Run")
    r.image(png, "training curves").image(tmp_path / "nope.png")
    r.table([{"method": "dense", "AUC@5": 51.0123}, {"method": "a|b", "AUC@5": float("nan")}])
    text = r.write().read_text()
    assert "](../curves.png)" in text and "picture missing: nope.png" in text
    assert "| dense | 51 |" in text and "a\\|b" in text and "| method | AUC@5 |" in text
    assert bars.is_file()
