"""PLY export of a `Scene`: the points, and the cameras as a line set, for MeshLab, CloudCompare,
Blender or Open3D. Binary little-endian PLY written with numpy (no open3d needed).

Two files, because a point-cloud reader would count the frustum corners as points:
`FILE.ply` holds the coloured points; `FILE_cameras.ply` holds the frustum corners as vertices
and the frustum edges as `edge` elements with a colour each (Open3D's `read_line_set` format).
Coordinates are written as doubles so georeferenced models keep their precision.
"""

import logging
from pathlib import Path

import numpy as np

from recon_match.fileio import atomic_path
from recon_match.viz.scene3d import Scene

logger = logging.getLogger(__name__)


def _u8(colors) -> np.ndarray:
    return np.clip(np.round(np.asarray(colors, float) * 255), 0, 255).astype(np.uint8)


def _write_ply(path: Path, elements: list) -> Path:
    """Write PLY `elements`: a list of (name, structured numpy array)."""
    kinds = {"f8": "double", "f4": "float", "u1": "uchar", "i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", "comment written by recon-match"]
    for name, arr in elements:
        header.append(f"element {name} {len(arr)}")
        for field in arr.dtype.names:
            header.append(f"property {kinds[arr.dtype[field].str[1:]]} {field}")
    header.append("end_header")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            for _, arr in elements:
                f.write(arr.tobytes())
    return path


def write_points_ply(path, points: np.ndarray, colors: np.ndarray) -> Path:
    """Write N x 3 `points` with N x 3 `colors` in [0, 1] as a coloured point cloud."""
    dtype = [("x", "<f8"), ("y", "<f8"), ("z", "<f8"),
             ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    v = np.empty(len(points), dtype=dtype)
    for i, k in enumerate("xyz"):
        v[k] = points[:, i]
    rgb = _u8(colors).reshape(-1, 3)
    v["red"], v["green"], v["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return _write_ply(Path(path), [("vertex", v)])


def write_lines_ply(path, vertices: np.ndarray, lines: np.ndarray, colors: np.ndarray) -> Path:
    """Write a line set: V x 3 `vertices`, L x 2 `lines` (vertex indices), L x 3 `colors`."""
    v = np.empty(len(vertices), dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8")])
    for i, k in enumerate("xyz"):
        v[k] = vertices[:, i]
    e = np.empty(len(lines), dtype=[("vertex1", "<i4"), ("vertex2", "<i4"),
                                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    e["vertex1"], e["vertex2"] = lines[:, 0], lines[:, 1]
    rgb = _u8(colors).reshape(-1, 3)
    e["red"], e["green"], e["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return _write_ply(Path(path), [("vertex", v), ("edge", e)])


def cameras_path(path) -> Path:
    """Where the cameras' line set goes for points written to `path`: `NAME_cameras.ply`."""
    path = Path(path)
    return path.with_name(f"{path.stem}_cameras.ply")


def export_scene(scene: Scene, path) -> tuple[Path, Path]:
    """Write the scene's points to `path` and its camera frustums to `cameras_path(path)`."""
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise ValueError(f"{path}: the PLY export needs a file name ending in .ply")
    points = write_points_ply(path, scene.points, scene.point_colors)
    cams = write_lines_ply(cameras_path(path), scene.line_points, scene.lines, scene.line_colors)
    logger.info("wrote %d points to %s and %d cameras to %s",
                len(scene.points), points, len(scene.centers), cams)
    return points, cams
