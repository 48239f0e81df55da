"""Pinhole geometry shared by the renderer, the data generators and evaluation.

Poses are COLMAP's world-to-camera `cam_from_world` 4x4 (or 3x4) matrices; K is 3x3;
pixel coordinates follow `recon_match.coords` (pixel centre at integer coordinates).
Depth is the z coordinate in the camera frame (0 or non-finite = no surface).
"""

import numpy as np


def backproject(depth, K, cam_from_world):
    """H x W depth -> H x W x 3 world points (pixel-centre convention)."""
    h, w = depth.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(K).T
    pts_cam = rays * depth[..., None]
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    return (pts_cam - t) @ R  # R^T (p - t)


def project(points, K, cam_from_world):
    """... x 3 world points -> (... x 2 pixel coordinates, ... depth)."""
    R, t = cam_from_world[:3, :3], cam_from_world[:3, 3]
    pc = points @ R.T + t
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pc @ K.T)[..., :2] / z[..., None]
    return uv, z


def warp_from_depth(depth0, K0, T0, K1, T1, depth1=None, rel_tol=0.01):
    """Dense correspondences of view 0 in view 1 from depth and poses.

    Returns (warp0 H0 x W0 x 2 float32 pixel coords in view 1, valid0 H0 x W0 bool).
    A pixel is valid when it has depth, lands inside view 1 in front of the camera and,
    if `depth1` is given, is not occluded there (its depth matches view 1's depth within
    `rel_tol`, read at the nearest pixel).
    """
    ok = np.isfinite(depth0) & (depth0 > 0)
    pts = backproject(np.where(ok, depth0, 1.0), K0, T0)
    uv, z = project(pts, K1, T1)
    h1, w1 = (depth1.shape if depth1 is not None else (None, None))
    valid = ok & (z > 1e-9) & np.isfinite(uv).all(-1)
    if depth1 is not None:
        x, y = uv[..., 0], uv[..., 1]
        valid &= (x > -0.5) & (x < w1 - 0.5) & (y > -0.5) & (y < h1 - 0.5)
        xi = np.clip(np.round(np.nan_to_num(x)), 0, w1 - 1).astype(int)
        yi = np.clip(np.round(np.nan_to_num(y)), 0, h1 - 1).astype(int)
        d1 = depth1[yi, xi]
        valid &= np.isfinite(d1) & (np.abs(d1 - z) <= rel_tol * np.maximum(z, 1e-9))
    warp = np.where(valid[..., None], uv, 0).astype(np.float32)
    return warp, valid


def relative_pose(T0, T1):
    """cam1_from_cam0 given two world-to-camera 4x4 poses."""
    return T1 @ np.linalg.inv(T0)


def to_4x4(T):
    T = np.asarray(T, dtype=np.float64)
    if T.shape == (4, 4):
        return T
    out = np.eye(4)
    out[:3] = T[:3]
    return out
