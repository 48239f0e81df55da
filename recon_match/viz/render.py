"""Drawing a `Scene` with Open3D: a headless PNG, or an interactive window when a display exists.

open3d is an optional extra and is imported only here, inside functions. Headless rendering
uses Open3D's `OffscreenRenderer` (Filament over Vulkan; on a machine without a GPU it runs on
Mesa's software Vulkan, no X server needed).

The view is chosen automatically (`frame_view`): it looks along the cameras' mean viewing
direction from behind and above them (or straight down for cameras circling an object), and
moves back just far enough that all cameras and the robust 96% of the points fit the frame.
The view is a plain pinhole camera in OpenCV convention, so callers can project with it.
"""

import contextlib
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from recon_match.geometry import project
from recon_match.viz.png import save_png
from recon_match.viz.scene3d import Scene, robust_points

logger = logging.getLogger(__name__)

INSTALL_HINT = ('open3d is needed for 3D views: pip install "recon-match[viz]" (or open3d-cpu), '
                "and on Debian/Ubuntu: apt-get install libusb-1.0-0 libvulkan1 mesa-vulkan-drivers")

default_conf = {
    "size": (1280, 960),  # W, H of the picture in pixels
    "fov_deg": 55.0,  # horizontal field of view of the render camera
    "margin": 0.06,  # share of the frame kept free at each border
    "elevation_deg": 30.0,  # how far above the cameras' mean viewing direction we look from
    "point_size": 3.0,  # pixels
    "line_width": 2.0,  # pixels
    "background": (0.93, 0.93, 0.93),  # neutral light grey
}


def import_open3d():
    """Import open3d, or raise ImportError with the install hint."""
    try:
        import open3d
    except (ImportError, OSError) as e:  # OSError: a missing system library such as libusb
        raise ImportError(f"{INSTALL_HINT} ({type(e).__name__}: {e})") from e
    return open3d


def has_display() -> bool:
    """Whether an interactive window can open (Linux needs X11 or Wayland)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


@dataclass
class View:
    """A pinhole render camera: K 3 x 3 (pixel-centre origin), cam_from_world 4 x 4 (OpenCV axes:
    x right, y down, z forward), image size in pixels."""
    K: np.ndarray
    cam_from_world: np.ndarray
    width: int
    height: int

    def project(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N x 2) and depths (N) of world points N x 3."""
        return project(xyz, self.K, self.cam_from_world)


def _merge(conf):
    unknown = set(conf or {}) - set(default_conf)
    if unknown:
        raise ValueError(f"unknown render options {sorted(unknown)}; known: {sorted(default_conf)}")
    return {**default_conf, **(conf or {})}


def _view_axes(scene: Scene, elevation_deg: float):
    """Unit viewing direction and world 'up' for the render camera, from the reconstructed
    cameras (query poses only when there are no others)."""
    poses = scene.poses[~scene.is_query] if (~scene.is_query).any() else scene.poses
    if len(poses):
        R = poses[:, :3, :3]
        forward = R[:, 2, :].mean(0)  # camera z axes in world coordinates
        up = -R[:, 1, :].mean(0)  # COLMAP images have y down
    else:
        forward, up = np.array([0.0, 0, 1]), np.array([0.0, -1, 0])
    if np.linalg.norm(up) < 0.3:  # cameras rolled every which way: no agreed "up"
        up = _any_perpendicular(forward) if np.linalg.norm(forward) > 1e-6 else np.eye(3)[2]
    up = up / np.linalg.norm(up)
    forward = forward - up * (forward @ up)
    if np.linalg.norm(forward) < 0.3:  # cameras look at each other: an object scene
        d = -up * np.cos(np.radians(35)) + _any_perpendicular(up) * np.sin(np.radians(35))
        return d / np.linalg.norm(d), up
    forward /= np.linalg.norm(forward)
    e = np.radians(elevation_deg)
    return forward * np.cos(e) - up * np.sin(e), up


def _any_perpendicular(v):
    a = np.eye(3)[np.argmin(np.abs(v))]
    p = np.cross(v, a)
    return p / np.linalg.norm(p)


def frame_view(scene: Scene, conf: dict | None = None) -> View:
    """The render camera that shows every camera frustum and the robust points of `scene`."""
    conf = _merge(conf)
    W, H = map(int, conf["size"])
    d, up = _view_axes(scene, conf["elevation_deg"])
    y = -(up - d * (up @ d))
    y /= np.linalg.norm(y)
    x = np.cross(y, d)
    R = np.stack([x, y, d])
    xyz = np.vstack([scene.line_points, robust_points(scene.points)])
    if len(xyz) == 0:
        xyz = np.zeros((1, 3))
    f = W / 2 / np.tan(np.radians(conf["fov_deg"]) / 2)
    # Usable half-extents of the image plane at depth 1, after the margin.
    tx, ty = (1 - 2 * conf["margin"]) * W / 2 / f, (1 - 2 * conf["margin"]) * H / 2 / f
    local = xyz @ R.T
    # Centre the frame on the local x/y box, then back off until every point fits.
    cx, cy = (local[:, 0].max() + local[:, 0].min()) / 2, (local[:, 1].max() + local[:, 1].min()) / 2
    need = np.maximum(np.abs(local[:, 0] - cx) / tx, np.abs(local[:, 1] - cy) / ty) - local[:, 2]
    extent = max(np.ptp(local, 0).max(), 1e-6)
    depth = max(need.max(), (0.05 * extent) - local[:, 2].min())  # keep everything in front
    eye_local = np.array([cx, cy, -depth])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -eye_local
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]])
    return View(K=K, cam_from_world=T, width=W, height=H)


def _srgb_encode(rgb):
    """Filament reads the background as sRGB and, with post-processing off, writes it out
    linear; encoding it first makes the picture's background exactly the colour asked for
    (vertex colours of points and lines pass through unchanged)."""
    c = np.clip(np.asarray(rgb, float), 0, 1)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


@contextlib.contextmanager
def _native_output_captured():
    """Collect what Open3D/Filament print from C++ to stdout (a dozen lines per renderer) so
    it neither pollutes our stdout nor gets lost: logged at DEBUG, or put into the error."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        except ImportError:
            raise
        except Exception as e:
            os.dup2(saved, 1)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace").strip()
            raise RuntimeError(f"Open3D rendering failed: {e}\n{text}") from e
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        logger.debug("open3d says:\n%s", tmp.read().decode(errors="replace").strip())


def _geometries(o3d, scene: Scene, conf: dict):
    """(name, geometry, material) for Open3D: points unlit, frustums as unlit lines."""
    rendering = o3d.visualization.rendering
    out = []
    if len(scene.points):
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(scene.points))
        pcd.colors = o3d.utility.Vector3dVector(scene.point_colors)
        mat = rendering.MaterialRecord()
        mat.shader, mat.point_size = "defaultUnlit", float(conf["point_size"])
        out.append(("points", pcd, mat))
    if len(scene.lines):
        ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(scene.line_points),
                                  o3d.utility.Vector2iVector(scene.lines.astype(np.int32)))
        ls.colors = o3d.utility.Vector3dVector(scene.line_colors)
        mat = rendering.MaterialRecord()
        mat.shader, mat.line_width = "unlitLine", float(conf["line_width"])
        out.append(("cameras", ls, mat))
    return out


def render_scene(scene: Scene, path=None, view: View | None = None,
                 conf: dict | None = None) -> np.ndarray:
    """Render `scene` headless to an H x W x 3 uint8 picture; also write it to `path` (PNG).

    view: the render camera, by default `frame_view(scene, conf)`.
    """
    conf = _merge(conf)
    view = view or frame_view(scene, conf)
    t0 = time.perf_counter()
    with _native_output_captured():
        o3d = import_open3d()
        renderer = o3d.visualization.rendering.OffscreenRenderer(view.width, view.height)
        renderer.scene.set_background([*_srgb_encode(conf["background"]), 1.0])
        renderer.scene.view.set_post_processing(False)  # no tone mapping: exact colours
        for name, geometry, material in _geometries(o3d, scene, conf):
            renderer.scene.add_geometry(name, geometry, material)
        renderer.setup_camera(view.K, view.cam_from_world, view.width, view.height)
        image = np.asarray(renderer.render_to_image())[..., :3].copy()
        del renderer  # frees the Filament engine's buffers now, not at interpreter exit
    logger.info("rendered %dx%d in %.2f s", view.width, view.height, time.perf_counter() - t0)
    if path is not None:
        save_png(path, image)
    return image


def show_scene(scene: Scene, conf: dict | None = None,
               title: str = "recon-match") -> None:
    """Open an interactive Open3D window on `scene`, starting from the automatic view."""
    conf = _merge(conf)
    o3d = import_open3d()
    if not has_display():
        raise RuntimeError("no display (DISPLAY/WAYLAND_DISPLAY unset): render a PNG instead")
    view = frame_view(scene, conf)
    geoms = [{"name": n, "geometry": g, "material": m} for n, g, m in _geometries(o3d, scene, conf)]
    o3d.visualization.draw(geoms, title=title, width=view.width, height=view.height,
                           intrinsic_matrix=view.K, extrinsic_matrix=view.cam_from_world,
                           bg_color=(*conf["background"], 1.0), show_skybox=False,
                           point_size=int(conf["point_size"]), line_width=int(conf["line_width"]))


def render_reconstruction(rec, path, queries: dict | None = None, scene_conf: dict | None = None,
                          conf: dict | None = None) -> np.ndarray:
    """Render a `pycolmap.Reconstruction` (and optional query poses {name: 4 x 4
    cam_from_world}) to the PNG `path` with the automatic view; return the picture.
    Raises ImportError with the install hint when open3d is missing."""
    from recon_match.viz.scene3d import scene_from_reconstruction

    import_open3d()  # fail before any work when open3d is missing
    return render_scene(scene_from_reconstruction(rec, queries, scene_conf), path, conf=conf)
