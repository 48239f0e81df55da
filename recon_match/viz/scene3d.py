"""What a reconstruction looks like in 3D, as plain numpy: coloured points and camera frustums.

`scene_from_reconstruction` turns a `pycolmap.Reconstruction` (plus optional query poses) into
a `Scene`; `render` draws it with Open3D and `export` writes it as PLY. Keeping the scene in
numpy means export, framing and tests need no open3d.

Poses are COLMAP world-to-camera (`cam_from_world`); intrinsics use COLMAP's corner origin, so
the frustum's far rectangle spans pixel corners (0, 0) to (W, H).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap

from recon_match.geometry import to_4x4

logger = logging.getLogger(__name__)

default_conf = {
    "frustum_scale": None,  # frustum depth in world units; None = automatic
    "camera_color": (0.85, 0.10, 0.10),  # reconstructed cameras: red
    "query_color": (0.05, 0.35, 0.95),  # extra query poses: blue
}

# Frustum of one camera: apex 0, far corners 1..4 (top-left, top-right, bottom-right,
# bottom-left in the image), then vertex 5 above the top edge: a small triangle marking "up".
FRUSTUM_EDGES = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1],
                          [1, 5], [5, 2]], dtype=np.int64)


@dataclass
class Scene:
    """Everything drawn: N points, C cameras (reconstructed first, then queries), L lines.

    points: N x 3 float64 world coordinates; point_colors: N x 3 float64 in [0, 1];
    line_points: V x 3 float64; lines: L x 2 int64 indices into line_points;
    line_colors: L x 3 float64 in [0, 1]; centers: C x 3 camera centres;
    is_query: C bool; names: C image names; frustum_scale: depth of each frustum (world units).
    """
    points: np.ndarray
    point_colors: np.ndarray
    line_points: np.ndarray
    lines: np.ndarray
    line_colors: np.ndarray
    centers: np.ndarray
    poses: np.ndarray
    is_query: np.ndarray
    names: list
    frustum_scale: float

    def camera_lines(self, index: int) -> np.ndarray:
        """Line indices (into `lines`) of camera `index`'s frustum."""
        n = len(FRUSTUM_EDGES)
        return np.arange(index * n, (index + 1) * n)


def frustum(K, width: int, height: int, cam_from_world, scale: float) -> np.ndarray:
    """Vertices (6 x 3, world) of a camera frustum whose far rectangle is `scale` deep.

    K: 3 x 3 intrinsics (COLMAP corner origin); cam_from_world: 3 x 4 or 4 x 4.
    """
    w, h = float(width), float(height)
    uv = np.array([[0, 0], [w, 0], [w, h], [0, h], [w / 2, -0.15 * h]])
    rays = np.linalg.solve(np.asarray(K, float), np.c_[uv, np.ones(len(uv))].T).T
    cam = np.vstack([np.zeros(3), rays / rays[:, 2:] * scale])
    T = np.linalg.inv(to_4x4(cam_from_world))
    return cam @ T[:3, :3].T + T[:3, 3]


def auto_frustum_scale(centers: np.ndarray, points: np.ndarray) -> float:
    """A frustum depth that is visible at the scene's scale without frustums piling up.

    5% of the robust scene extent (cameras + central 96% of points), but at most 45% of the
    median distance between neighbouring cameras so that close cameras (video) stay apart.
    """
    extent = scene_extent(centers, points)
    scale = 0.05 * extent
    if len(centers) > 1:
        d = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        nn = np.median(d.min(1))
        if np.isfinite(nn) and nn > 0:
            scale = min(scale, 0.45 * nn)
    return float(scale) if scale > 0 else 1.0


def robust_points(points: np.ndarray, keep: float = 0.96) -> np.ndarray:
    """The `keep` share of `points` closest to their median: stray SfM points must not set
    the frame or the scale."""
    if len(points) < 20:
        return points
    d = np.linalg.norm(points - np.median(points, 0), axis=1)
    return points[d <= np.quantile(d, keep)]


def scene_extent(centers: np.ndarray, points: np.ndarray) -> float:
    """Diagonal of the bounding box of the camera centres and the robust points."""
    xyz = np.vstack([np.reshape(centers, (-1, 3)), robust_points(np.reshape(points, (-1, 3)))])
    if len(xyz) == 0:
        return 0.0
    return float(np.linalg.norm(xyz.max(0) - xyz.min(0)))


def read_poses(path) -> dict:
    """Read an hloc/COLMAP poses file: `name qw qx qy qz tx ty tz` per line (world-to-camera).

    Returns {name: 4 x 4 cam_from_world}. Blank lines and `#` comments are skipped; a bad line
    raises ValueError naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: poses file does not exist")
    poses = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        try:
            qw, qx, qy, qz, tx, ty, tz = map(float, parts[1:])
        except ValueError:
            raise ValueError(f"{path}:{i}: expected 'name qw qx qy qz tx ty tz', got {line!r}")
        q = np.array([qx, qy, qz, qw])
        if not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-8:
            raise ValueError(f"{path}:{i}: invalid quaternion in {line!r}")
        rot = pycolmap.Rotation3d(q / np.linalg.norm(q))
        poses[parts[0]] = to_4x4(pycolmap.Rigid3d(rot, np.array([tx, ty, tz])).matrix())
    return poses


def _points(rec: pycolmap.Reconstruction):
    pts = list(rec.points3D.values())
    xyz = np.array([p.xyz for p in pts], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in pts], dtype=np.float64).reshape(-1, 3) / 255.0
    return xyz, rgb


def _cameras(rec: pycolmap.Reconstruction, queries: dict | None):
    """(name, camera, cam_from_world 4x4, is_query) for every registered image and query.

    A query named like a model image uses that image's camera, otherwise the model's first
    camera (lowest id): queries usually share the reference camera in viewing only.
    """
    cams = []
    for image in sorted(rec.images.values(), key=lambda im: im.name):
        if image.has_pose:
            cams.append((image.name, rec.cameras[image.camera_id],
                         to_4x4(image.cam_from_world().matrix()), False))
    by_name = {im.name: im for im in rec.images.values()}
    for name, T in (queries or {}).items():
        if not rec.cameras:
            raise ValueError("cannot draw query poses: the model has no camera")
        im = by_name.get(name)
        cam = rec.cameras[im.camera_id] if im is not None else rec.cameras[min(rec.cameras)]
        cams.append((name, cam, to_4x4(T), True))
    return cams


def scene_from_reconstruction(rec: pycolmap.Reconstruction, queries: dict | None = None,
                              conf: dict | None = None) -> Scene:
    """Build the `Scene` of `rec`: its points with their colours, one frustum per registered
    image, and one per query pose ({name: 4 x 4 cam_from_world}) in `query_color`."""
    unknown = set(conf or {}) - set(default_conf)
    if unknown:
        raise ValueError(f"unknown viz options {sorted(unknown)}; known: {sorted(default_conf)}")
    conf = {**default_conf, **(conf or {})}
    xyz, rgb = _points(rec)
    cams = _cameras(rec, queries)
    poses = np.array([T for _, _, T, _ in cams]).reshape(-1, 4, 4)
    centers = np.linalg.inv(poses)[:, :3, 3] if len(poses) else np.zeros((0, 3))
    scale = conf["frustum_scale"] or auto_frustum_scale(centers, xyz)
    verts, lines, colors = [], [], []
    for i, (_, cam, T, is_query) in enumerate(cams):
        verts.append(frustum(cam.calibration_matrix(), cam.width, cam.height, T, scale))
        lines.append(FRUSTUM_EDGES + i * 6)
        color = conf["query_color"] if is_query else conf["camera_color"]
        colors.append(np.tile(np.asarray(color, float), (len(FRUSTUM_EDGES), 1)))
    logger.debug("scene: %d points, %d cameras, frustum scale %.3g", len(xyz), len(cams), scale)
    return Scene(points=xyz, point_colors=rgb,
                 line_points=np.vstack(verts) if verts else np.zeros((0, 3)),
                 lines=np.vstack(lines) if lines else np.zeros((0, 2), np.int64),
                 line_colors=np.vstack(colors) if colors else np.zeros((0, 3)),
                 centers=centers, poses=poses, is_query=np.array([c[3] for c in cams], bool),
                 names=[c[0] for c in cams], frustum_scale=float(scale))
