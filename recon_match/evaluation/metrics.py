"""Pose accuracy of a reconstruction against ground truth.

Two families of metrics:
- relative pose over ALL pairs of the evaluated images (alignment-free): error =
  max(relative rotation angle, angle between translation directions) in degrees, with
  unregistered images counting as failures (infinite error); summarized as AUC.
- absolute per-image errors after a robust similarity alignment of the reconstruction to
  the ground truth on camera centres: rotation error (degrees) and camera-centre error
  (ground-truth units).
"""

import itertools
import logging

import numpy as np
import pycolmap

logger = logging.getLogger(__name__)

THRESHOLDS = (1, 3, 5, 10)
ALIGN_MAX_ERROR = 0.1  # RANSAC inlier threshold, as a fraction of the GT camera spread


def pose_auc(errors, thresholds=THRESHOLDS) -> list[float]:
    """Area under the recall-vs-error curve up to each threshold, as fractions in [0, 1].

    `errors`: N errors (any unit matching `thresholds`; `inf` = failure). The curve is
    recall(e) = fraction of errors <= e, integrated on [0, t] and divided by t.
    """
    errors = np.sort(np.asarray(errors, dtype=np.float64))
    if errors.size == 0:
        raise ValueError("pose_auc needs at least one error")
    recall = np.arange(1, errors.size + 1) / errors.size
    errors = np.r_[0.0, errors]
    recall = np.r_[0.0, recall]
    aucs = []
    for t in thresholds:
        last = np.searchsorted(errors, t)
        r = np.r_[recall[:last], recall[last - 1]]
        e = np.r_[errors[:last], t]
        aucs.append(float(np.trapezoid(r, x=e) / t))
    return aucs


def rotation_angle_deg(R) -> float:
    """Angle of a 3x3 rotation matrix in degrees (atan2 form: exact near 0, unlike arccos)."""
    sin = np.linalg.norm([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2
    return float(np.degrees(np.arctan2(sin, (np.trace(R) - 1) / 2)))


def vector_angle_deg(a, b) -> float:
    """Angle between two 3-vectors in degrees (atan2 form)."""
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b)))


def _pose(rec, name):
    """(R, t) of `name` in `rec` (world-to-camera), or None when absent or unregistered."""
    im = rec.find_image_with_name(name)
    if im is None or not im.has_pose:
        return None
    T = im.cam_from_world()
    return T.rotation.matrix(), np.asarray(T.translation, dtype=np.float64)


def relative_pose_error(pose0, pose1, gt0, gt1) -> float:
    """max(rotation error, translation-direction error) in degrees of the pose of camera 1
    relative to camera 0, estimate vs ground truth. No sign ambiguity is allowed: an SfM
    model fixes the direction of the baseline."""
    def relative(p0, p1):
        R = p1[0] @ p0[0].T
        return R, p1[1] - R @ p0[1]

    R, t = relative(pose0, pose1)
    R_gt, t_gt = relative(gt0, gt1)
    err_R = rotation_angle_deg(R.T @ R_gt)
    n, n_gt = np.linalg.norm(t), np.linalg.norm(t_gt)
    if n_gt < 1e-12:  # GT pair without baseline: the direction is undefined
        return err_R
    err_t = 180.0 if n < 1e-12 else vector_angle_deg(t, t_gt)
    return max(err_R, err_t)


def relative_pose_errors(rec, gt, names) -> np.ndarray:
    """Errors (degrees) for all N(N-1)/2 pairs of `names`, inf where either is unregistered."""
    poses = {n: _pose(rec, n) for n in names}
    gts = {n: _pose(gt, n) for n in names}
    errors = []
    for a, b in itertools.combinations(names, 2):
        if poses[a] is None or poses[b] is None:
            errors.append(np.inf)
        else:
            errors.append(relative_pose_error(poses[a], poses[b], gts[a], gts[b]))
    return np.asarray(errors, dtype=np.float64)


def camera_spread(gt, names) -> float:
    """Median distance of the GT camera centres of `names` to their median: a scene scale."""
    centres = np.array([gt.find_image_with_name(n).projection_center() for n in names])
    return float(np.median(np.linalg.norm(centres - np.median(centres, 0), axis=1)))


def align(rec, gt, names, max_error=None):
    """Robust similarity `gt_from_rec` (pycolmap.Sim3d) fitted on camera centres, or None.

    `max_error`: inlier threshold in GT units (default ALIGN_MAX_ERROR x camera spread).
    Needs at least 3 registered images in common.
    """
    common = [n for n in names if _pose(rec, n) is not None]
    if len(common) < 3:
        return None
    if max_error is None:
        max_error = ALIGN_MAX_ERROR * max(camera_spread(gt, names), 1e-9)
    return pycolmap.align_reconstructions_via_proj_centers(rec, gt, max_proj_center_error=max_error)


def absolute_errors(rec, gt, names, gt_from_rec) -> dict:
    """{name: (rotation error deg, centre error in GT units)} for registered `names`."""
    R_s = gt_from_rec.rotation.matrix()
    out = {}
    for n in names:
        pose = _pose(rec, n)
        if pose is None:
            continue
        im, im_gt = rec.find_image_with_name(n), gt.find_image_with_name(n)
        R_aligned = pose[0] @ R_s.T
        err_R = rotation_angle_deg(R_aligned @ _pose(gt, n)[0].T)
        centre = gt_from_rec * np.asarray(im.projection_center(), dtype=np.float64)
        out[n] = (err_R, float(np.linalg.norm(centre - im_gt.projection_center())))
    return out


def evaluate(rec, gt, names=None, thresholds=THRESHOLDS, max_align_error=None) -> dict:
    """Ground-truth metrics of `rec` over `names` (default: every GT image).

    Returns a JSON-ready dict: `auc` {str(threshold): percent}, `median_rotation_error_deg`
    and `median_center_error` over registered images (None when alignment failed),
    `registered_fraction`, `num_pairs`, `aligned`, and `per_image` {name: [rot_deg,
    centre_err] or None when unregistered}.
    """
    names = sorted(im.name for im in gt.images.values()) if names is None else list(names)
    if len(names) < 2:
        raise ValueError(f"need at least 2 images to evaluate, got {len(names)}")
    missing = [n for n in names if _pose(gt, n) is None]
    if missing:
        raise ValueError(f"ground truth has no pose for {len(missing)} images ({missing[:5]})")
    errors = relative_pose_errors(rec, gt, names)
    aucs = pose_auc(errors, thresholds)
    sim = align(rec, gt, names, max_align_error)
    per_image = absolute_errors(rec, gt, names, sim) if sim is not None else {}
    if sim is None:
        logger.warning("could not align the reconstruction to the ground truth")
    registered = sum(_pose(rec, n) is not None for n in names)
    rot = [e[0] for e in per_image.values()]
    ctr = [e[1] for e in per_image.values()]
    return {
        "auc": {str(t): 100.0 * a for t, a in zip(thresholds, aucs)},
        "median_rotation_error_deg": float(np.median(rot)) if rot else None,
        "median_center_error": float(np.median(ctr)) if ctr else None,
        "registered_fraction": registered / len(names),
        "num_pairs": int(errors.size),
        "aligned": sim is not None,
        "per_image": {n: (list(per_image[n]) if n in per_image else None) for n in names},
    }
