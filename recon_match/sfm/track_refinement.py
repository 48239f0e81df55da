"""Multi-view track refinement after mapping: make every track agree with one reference view.

Dense matches of one image come from many pairs, each with its own error, so the
observations of a 3D point disagree by a pixel or more, and on repetitive texture a few
sit on a false correlation peak. Like pixel-perfect SfM (with NCC instead of learned
features), each observation is moved to where the patch of the track's reference view
correlates best, searched in a small radius around the 3D point's projection: the model
is already close, so the radius can stay below the period of the texture. Observations
it cannot place, or only at a peak that is not sharp (it could slide along an edge or a
stripe), are dropped; then bundle adjustment and a reprojection filter. Guards: an image
never loses so many that fewer than `min_image_observations` remain, and where the NCC
places too little (textureless scenes) the model is left as mapped.

The local affine between the reference and another view comes from the surface plane at
the point, fitted to the 3D points of its nearest neighbours in the reference image, so
that the template fits across viewpoint (with the plane facing the reference camera, the
NCC peaks on the rendered object sit ~2x further from the truth).
"""

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pycolmap
import torch
from tqdm import trange

from ..config import merge_conf as _merge
from ..imageio import read_image
from ..subpixel import refine_matches
from .mapping import fix_intrinsics

logger = logging.getLogger(__name__)

default_conf = {
    "enabled": True,      # imported (dense) matches only: the SIFT baseline stays COLMAP's
    "iterations": 2,
    "window": 15,         # px, NCC template side
    "search": 2.5,        # px, radius around the projection
    "min_ncc": 0.8,
    "min_sharpness": 0.05,  # NCC / px^2, see subpixel.refine_matches
    # drop the observations the NCC cannot place: a peak that is not sharp (edges, stripes),
    # away from the projection (repeated texture, a wrong track) or too weak. Keeping the
    # weak ones (NCC < min_ncc) keeps 5x more points on the textureless dino, but leaves
    # the object scene at AUC@5 96.0 instead of 98.9
    "drop_unplaced": True,
    "min_image_observations": 100,  # an image that would keep fewer keeps its unplaced ones
    # below this fraction placed, the images do not support the refinement (textureless,
    # or not what the model shows): the model is left as mapped
    "min_placed_fraction": 0.2,
    "max_error": 1.0,     # px, observations beyond it after adjustment are dropped
    "min_tri_angle": 1.0,  # deg, points below it after adjustment are dropped
    "plane_neighbours": 10,  # 3D points of the nearest observations that fit the local plane
}


def merge_conf(conf=None) -> dict:
    return _merge(default_conf, conf, "track_refinement")


def _track_refs(rec):
    """{point3D_id: (ref image_id, ref point2D_idx)}: the observation whose viewing ray is
    closest to the track's mean ray (the middle view: smallest angles to the others)."""
    centres = {i: rec.image(i).projection_center() for i in rec.reg_image_ids()}
    refs = {}
    for pid, p in rec.points3D.items():
        els = p.track.elements
        rays = np.array([centres[e.image_id] - p.xyz for e in els])
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        refs[pid] = els[int(np.argmax(rays @ rays.mean(0)))]
    return refs


def _backproject_plane(image, px, X, normal):
    """Points where the rays of `image` through `px` (N x 2, COLMAP pixels) meet the planes
    through X (N x 3) with normals `normal` (N x 3): N x 3 world points."""
    c = image.projection_center()
    cam = image.cam_from_world()
    d = np.c_[image.camera.cam_from_img(px.astype(np.float64)), np.ones(len(px))]
    d = d @ cam.rotation.matrix()  # world directions: R^T d
    t = np.einsum("ij,ij->i", X - c, normal) / np.einsum("ij,ij->i", d, normal)
    return c + t[:, None] * d


def _project(image, X):
    cam = image.cam_from_world()
    return image.camera.img_from_cam(X @ cam.rotation.matrix().T + cam.translation,
                                     check_cheirality=False)


def _surface_normals(image, X, px, k):
    """Unit normals (N x 3, facing `image`'s camera) at the 3D points X (N x 3) observed at
    `px` (N x 2) in `image`: the plane of the points of the k nearest observations. Where
    the fit is poor (too few points, no clear plane, or seen edge-on) the plane faces the
    camera instead."""
    view = image.projection_center() - X
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    if len(X) < k:
        return view
    d = torch.cdist(torch.from_numpy(px).float(), torch.from_numpy(px).float())
    nn = d.topk(k, largest=False).indices.numpy()
    nb = X[nn] - X[nn].mean(1, keepdims=True)
    evals, evecs = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    normal = evecs[:, :, 0] * np.sign(np.einsum("ni,ni->n", evecs[:, :, 0], view))[:, None]
    planar = evals[:, 0] < 0.1 * evals[:, 1]
    facing = np.einsum("ni,ni->n", normal, view) > 0.3  # within ~70 deg of the view ray
    return np.where((planar & facing)[:, None], normal, view)


def _local_affine(ref, other, px, X, normal):
    """N x 2 x 2 maps of small offsets around `px` in `ref` to offsets in `other`, through
    the planes at X with normals `normal` (central differences of +-1 px)."""
    cols = []
    for step in (np.array([1.0, 0.0]), np.array([0.0, 1.0])):
        a = _project(other, _backproject_plane(ref, px + step, X, normal))
        b = _project(other, _backproject_plane(ref, px - step, X, normal))
        cols.append((a - b) / 2)
    return np.stack(cols, -1)


def _image_normals(rec, image, k):
    """Surface normals at every observation of `image` with a 3D point (point2D_idx -> row;
    other rows NaN): num_points2D x 3."""
    idx = np.array([i for i, p in enumerate(image.points2D) if p.has_point3D()], int)
    out = np.full((image.num_points2D(), 3), np.nan)
    if len(idx):
        X = np.array([rec.points3D[image.points2D[i].point3D_id].xyz for i in idx])
        px = np.array([image.points2D[i].xy for i in idx])
        out[idx] = _surface_normals(image, X, px, k)
    return out


def _refine_pass(rec, gray, conf):
    """Where the non-reference observations fit the reference patches best: returns the
    placed [(image_id, point2D_idx, xy)] and the unplaced [(image_id, point2D_idx)]."""
    groups = defaultdict(list)  # (ref image, other image) -> [(point3D_id, ref idx, idx)]
    for pid, ref in _track_refs(rec).items():
        for e in rec.points3D[pid].track.elements:
            if e.image_id != ref.image_id:
                groups[ref.image_id, e.image_id].append((pid, ref.point2D_idx, e.point2D_idx))
    placed, unplaced = [], []
    normals = {}
    for (ri, oi), items in groups.items():
        ref, other = rec.image(ri), rec.image(oi)
        if ri not in normals:
            normals[ri] = _image_normals(rec, ref, conf["plane_neighbours"])
        pids, ridx, oidx = (np.array(x) for x in zip(*items))
        X = np.array([rec.points3D[p].xyz for p in pids])
        anchors = np.array([ref.points2D[i].xy for i in ridx])
        proj = _project(other, X)
        affine = _local_affine(ref, other, anchors, X, normals[ri][ridx])
        # COLMAP pixels have their origin at the corner, refine_matches at the centre
        out, _, ok = refine_matches(gray[ri], gray[oi], anchors - 0.5, proj - 0.5,
                                    conf["window"], conf["search"], conf["min_ncc"], affine,
                                    conf["min_sharpness"], square_pass=False)
        placed += [(oi, int(k), xy + 0.5) for k, xy in zip(oidx[ok], out[ok])]
        unplaced += [(oi, int(k)) for k in oidx[~ok]]
    return placed, unplaced


def refine_tracks(rec: pycolmap.Reconstruction, image_dir, conf=None, fixed_intrinsics=False) -> dict:
    """Refine the observations of `rec` in place (see the module docstring); returns counts
    per iteration. The images are read from `image_dir` under their names in `rec`.
    `fixed_intrinsics`: calibrated cameras, kept as they are by the bundle adjustment."""
    conf = merge_conf(conf)
    gray = {i: read_image(Path(image_dir) / rec.image(i).name, grayscale=True)
            for i in rec.reg_image_ids()}
    stats = {"observations_before": rec.compute_num_observations(), "iterations": [],
             "skipped": False}
    for it in trange(conf["iterations"], desc="refining tracks", unit="iter"):
        placed, unplaced = _refine_pass(rec, gray, conf)
        if len(placed) < conf["min_placed_fraction"] * (len(placed) + len(unplaced)):
            logger.warning("track refinement placed only %d of %d observations (weak texture, "
                           "or too fine for a sharp peak at this resolution); the model stays "
                           "as mapped", len(placed), len(placed) + len(unplaced))
            stats["skipped"] = True
            break
        for i, k, xy in placed:
            rec.image(i).points2D[k].xy = xy
        obs = pycolmap.ObservationManager(rec)
        spared = _drop(rec, obs, unplaced, conf["min_image_observations"]) \
            if conf["drop_unplaced"] else len({i for i, _ in unplaced})
        # points left with (nearly) parallel rays make the adjustment's system singular
        obs.filter_points3D_with_small_triangulation_angle(conf["min_tri_angle"],
                                                           set(rec.point3D_ids()))
        pycolmap.bundle_adjustment(rec, _ba_options(fixed_intrinsics))
        dropped = obs.filter_all_points3D(conf["max_error"], conf["min_tri_angle"])
        logger.info("track refinement %d: %d observations moved, %d not placed (kept in %d "
                    "images), %d dropped after adjustment", it + 1, len(placed), len(unplaced),
                    spared, dropped)
        stats["iterations"].append({"moved": len(placed), "not_placed": len(unplaced),
                                    "images_keeping_unplaced": spared, "dropped": dropped})
    stats["observations_after"] = rec.compute_num_observations()
    return stats


def _drop(rec, obs, unplaced, min_keep) -> int:
    """Delete the `unplaced` observations, except in images that would keep fewer than
    `min_keep` (textureless views, or images that do not show what the model says): a
    refinement must not cut an image loose. Returns how many images kept theirs."""
    by_image = defaultdict(list)
    for i, k in unplaced:
        by_image[i].append(k)
    spared = 0
    for i, ks in by_image.items():
        if rec.image(i).num_points3D - len(ks) < min_keep:
            spared += 1
            continue
        for k in ks:
            if rec.image(i).points2D[k].has_point3D():  # a 2-view track may be gone already
                obs.delete_observation(i, k)
    return spared


def _ba_options(fixed_intrinsics):
    opts = pycolmap.BundleAdjustmentOptions()
    opts.ceres.loss_function_type = pycolmap.LossFunctionType.SOFT_L1
    if fixed_intrinsics:
        fix_intrinsics(opts, "refine_")
    return opts
