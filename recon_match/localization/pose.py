"""2D–3D correspondences from several reference images, and the absolute pose from them."""

import numpy as np
import pycolmap

from ..coords import to_colmap
from ..evaluation.metrics import rotation_angle_deg
from ..config import merge_conf

default_pose_conf = {
    "ransac_max_error": 6.0,   # px per 640 px of the query's long side (scaled to its resolution)
    "min_inliers": 20,          # below this the query is reported as not localized
    "min_inlier_ratio": 0.1,    # ... and so below this fraction of the correspondences
    "refine_focal": None,       # None: only when the focal length is a guess (source "default")
}


def aggregate(per_reference: list[dict]) -> dict:
    """Merge correspondences of several references, one per 3D point (the best-scoring).

    Each item has `query_xy` N x 2 (pixel centres, query resolution), `point3D_ids` N,
    `scores` N. The same 3D point seen from several references would otherwise count
    several times in RANSAC and inflate the inlier count.
    """
    keys = ("query_xy", "point3D_ids", "scores")
    parts = [c for c in per_reference if len(c["point3D_ids"])]
    if not parts:
        return {"query_xy": np.zeros((0, 2)), "point3D_ids": np.zeros(0, np.int64),
                "scores": np.zeros(0)}
    cat = {k: np.concatenate([np.asarray(c[k]) for c in parts]) for k in keys}
    order = np.argsort(-cat["scores"], kind="stable")
    _, first = np.unique(cat["point3D_ids"][order], return_index=True)
    keep = order[first]
    return {k: v[keep] for k, v in cat.items()}


def estimate_pose(query_xy: np.ndarray, xyz: np.ndarray, camera: pycolmap.Camera,
                  conf: dict | None = None, estimate_focal: bool = False) -> dict:
    """Absolute pose (LO-RANSAC + refinement) from N 2D–3D correspondences.

    `query_xy` N x 2 pixel-centre coordinates in the query image, `xyz` N x 3 world points.
    Returns a dict: `success`, `reason` (why not, else None), `num_correspondences`,
    `num_inliers`, and on success `cam_from_world` (pycolmap.Rigid3d, world-to-camera),
    `inlier_mask` N bool, `camera` (refined when the focal was estimated).
    """
    conf = merge_conf(default_pose_conf, conf, "pose")
    ok = np.isfinite(query_xy).all(1) & np.isfinite(xyz).all(1)
    p2d, p3d = to_colmap(np.asarray(query_xy, np.float64)[ok]), np.asarray(xyz, np.float64)[ok]
    out = {"success": False, "reason": None, "num_correspondences": int(len(p2d)), "num_inliers": 0}
    if len(p2d) == 0:
        return {**out, "reason": "no 2D-3D correspondences"}
    if len(p2d) < max(conf["min_inliers"], 4):
        return {**out, "reason": f"too few 2D-3D correspondences ({len(p2d)} < {conf['min_inliers']})"}
    est = pycolmap.AbsolutePoseEstimationOptions()
    est.ransac.max_error = conf["ransac_max_error"] * max(camera.width, camera.height) / 640
    est.ransac.random_seed = 0  # same inputs, same pose
    refine_focal = estimate_focal if conf["refine_focal"] is None else conf["refine_focal"]
    est.estimate_focal_length = bool(refine_focal)
    ref = pycolmap.AbsolutePoseRefinementOptions()
    ref.refine_focal_length = bool(refine_focal)
    camera = pycolmap.Camera(model=camera.model, width=camera.width, height=camera.height,
                             params=camera.params)  # the solver may refine it in place
    res = pycolmap.estimate_and_refine_absolute_pose(p2d, p3d, camera, est, ref)
    if res is None:
        return {**out, "reason": "absolute pose estimation failed"}
    n_in = int(res["num_inliers"])
    mask = np.zeros(len(ok), bool)
    mask[np.flatnonzero(ok)] = np.asarray(res["inlier_mask"], bool)
    out = {**out, "num_inliers": n_in}
    if n_in < conf["min_inliers"]:
        return {**out, "reason": f"too few inliers ({n_in} < {conf['min_inliers']})"}
    if n_in < conf["min_inlier_ratio"] * len(p2d):
        return {**out, "reason": f"inlier ratio too low ({n_in}/{len(p2d)} < {conf['min_inlier_ratio']})"}
    return {**out, "success": True, "cam_from_world": res["cam_from_world"], "inlier_mask": mask,
            "camera": camera}


def pose_error(cam_from_world: pycolmap.Rigid3d, gt_cam_from_world: pycolmap.Rigid3d):
    """(camera-centre distance in world units, rotation angle in degrees) between two poses."""
    c = cam_from_world.inverse().translation
    c_gt = gt_cam_from_world.inverse().translation
    dR = cam_from_world.rotation.matrix() @ gt_cam_from_world.rotation.matrix().T
    return float(np.linalg.norm(c - c_gt)), rotation_angle_deg(dR)
