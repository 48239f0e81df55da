"""Two-view geometry for the pair suites: robust estimation from matches and its errors.

Keypoints are pixel-centre coordinates in full-resolution images (`recon_match.coords`).
Every method goes through the same estimator with the same threshold, so the comparison
measures the matches only.
"""

import cv2
import numpy as np

from ...coords import to_colmap
from ..metrics import rotation_angle_deg, vector_angle_deg

MIN_MATCHES = 8


def relative_pose(kp0, kp1, cam0, cam1, threshold_px: float = 1.0):
    """(R, t) of camera 1 relative to camera 0 from matches with known intrinsics, or None.

    cam0, cam1: pycolmap cameras (any model: points are undistorted to normalized
    coordinates by `cam_from_img`). threshold_px: RANSAC threshold in full-resolution pixels,
    converted with the mean focal length. t is a unit vector.
    """
    if len(kp0) < MIN_MATCHES:
        return None
    n0 = np.asarray(cam0.cam_from_img(to_colmap(np.asarray(kp0, np.float64))), np.float64)
    n1 = np.asarray(cam1.cam_from_img(to_colmap(np.asarray(kp1, np.float64))), np.float64)
    ok = np.isfinite(n0).all(1) & np.isfinite(n1).all(1)
    n0, n1 = n0[ok], n1[ok]
    if len(n0) < MIN_MATCHES:
        return None
    focal = np.mean([cam0.mean_focal_length(), cam1.mean_focal_length()])
    try:
        E, mask = cv2.findEssentialMat(n0, n1, np.eye(3), method=cv2.RANSAC, prob=0.99999,
                                       threshold=threshold_px / focal)
    except cv2.error:  # degenerate samples (e.g. nearly identical points) trip OpenCV's solver
        return None
    if E is None or mask is None:
        return None
    best = None
    for e in E.reshape(-1, 3, 3):  # several solutions: keep the one most points agree with
        n, R, t, _ = cv2.recoverPose(e, n0, n1, np.eye(3), mask=mask.copy())
        if best is None or n > best[0]:
            best = (n, R, t.ravel())
    return best[1], best[2] / max(np.linalg.norm(best[2]), 1e-12)


def pose_error(R, t, R_gt, t_gt) -> float:
    """max(rotation error, translation-direction error) in degrees. The direction error is
    folded to [0, 90]: an essential matrix fixes the baseline only up to sign."""
    err_R = rotation_angle_deg(R.T @ R_gt)
    err_t = vector_angle_deg(np.asarray(t, np.float64), np.asarray(t_gt, np.float64))
    return max(err_R, min(err_t, 180.0 - err_t))


def gt_relative_pose(im0, im1):
    """(R, t) of pycolmap image 1 relative to image 0 (world-to-camera poses)."""
    T = im1.cam_from_world() * im0.cam_from_world().inverse()
    return T.rotation.matrix(), np.asarray(T.translation, np.float64)


def homography(kp0, kp1, threshold_px: float = 3.0):
    """3x3 H with kp1 ~ H kp0 by MAGSAC++ (OpenCV USAC), or None."""
    if len(kp0) < 4:
        return None
    H, _ = cv2.findHomography(np.asarray(kp0, np.float64), np.asarray(kp1, np.float64),
                              cv2.USAC_MAGSAC, threshold_px, maxIters=10000, confidence=0.9999)
    if H is None or not np.isfinite(H).all():
        return None
    return H


def corner_error(H, H_gt, width: int, height: int) -> float:
    """Mean distance (px in image 2) between the 4 corners of image 1 mapped by H and H_gt;
    inf when H is None or maps a corner to infinity."""
    if H is None:
        return np.inf
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]],
                       np.float64).T
    p, q = H @ corners, H_gt @ corners
    if np.any(np.abs(p[2]) < 1e-12):
        return np.inf
    return float(np.mean(np.linalg.norm(p[:2] / p[2] - q[:2] / q[2], axis=0)))
