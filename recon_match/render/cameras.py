"""Pinhole cameras for the renderer: intrinsics, look-at and yaw/tilt poses (world-to-camera,
COLMAP axes: x right, y down, z forward; world: metres, z up)."""

import numpy as np


def intrinsics(fx, fy, width, height):
    """3 x 3 K in the pixel-centre convention (principal point at the image centre)."""
    return np.array([[fx, 0, (width - 1) / 2], [0, fy, (height - 1) / 2], [0, 0, 1]], np.float64)


def pose_from_axes(x, y, z, centre):
    """4 x 4 cam_from_world from the camera's axes in world coordinates and its centre."""
    R = np.stack([x, y, z])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ np.asarray(centre, np.float64)
    return T


def look_at(eye, target, up=(0.0, 0.0, 1.0), roll=0.0):
    """4 x 4 cam_from_world for a camera at `eye` looking at `target`, `roll` radians about z."""
    eye = np.asarray(eye, np.float64)
    f = np.asarray(target, np.float64) - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    if np.linalg.norm(r) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to `up`")
    r /= np.linalg.norm(r)
    dn = np.cross(f, r)
    c, s = np.cos(roll), np.sin(roll)
    return pose_from_axes(c * r + s * dn, -s * r + c * dn, f, eye)


def yaw_tilt(centre, yaw, tilt):
    """Aerial camera: nadir when `tilt` = 0 (image top towards heading `yaw`, radians from +x
    rotated so yaw = 0 puts north (+y) at the image top); `tilt` radians pitches it forward."""
    x = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    y = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    y2 = np.cos(tilt) * y + np.sin(tilt) * z
    z2 = np.cos(tilt) * z - np.sin(tilt) * y
    return pose_from_axes(x, y2, z2, centre)


def camera_centre(cam_from_world):
    T = np.asarray(cam_from_world, np.float64)
    return -T[:3, :3].T @ T[:3, 3]


def rotmat_to_qvec(R):
    """3 x 3 rotation -> COLMAP quaternion (qw, qx, qy, qz), qw >= 0."""
    R = np.asarray(R, np.float64).T  # the formula below is written for COLMAP's transposed naming
    K = np.array([
        [R[0, 0] - R[1, 1] - R[2, 2], 0, 0, 0],
        [R[1, 0] + R[0, 1], R[1, 1] - R[0, 0] - R[2, 2], 0, 0],
        [R[2, 0] + R[0, 2], R[2, 1] + R[1, 2], R[2, 2] - R[0, 0] - R[1, 1], 0],
        [R[1, 2] - R[2, 1], R[2, 0] - R[0, 2], R[0, 1] - R[1, 0], R[0, 0] + R[1, 1] + R[2, 2]],
    ]) / 3.0
    w, v = np.linalg.eigh(K)
    q = v[[3, 0, 1, 2], np.argmax(w)]
    return q if q[0] >= 0 else -q
