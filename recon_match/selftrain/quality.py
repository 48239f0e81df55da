"""Label quality on a rendered video with exact ground truth.

The same labelling as on real clips (nearby pairs, filtering, propagation) runs on frames of
a random scene rendered along a smooth camera path. Every label is checked by ray casting:
the image0 keypoint's ray hits the scene at X; the label is right when X is visible from
camera 1 (not occluded) and projects within t px of the image1 keypoint.
"""

import logging
from pathlib import Path

import numpy as np

from ..geometry import project
from ..imageio import list_images, read_image
from ..config import merge_conf
from ..render import camera_path, cast_rays, random_scene, render_view
from ..render.cameras import camera_centre
from .label import FrameLabeller
from .store import default_conf as label_conf
from .store import label_clip_frames

logger = logging.getLogger(__name__)

THRESHOLDS = (1, 3, 5)
default_conf = {"seed": 0, "frames": 40, "height": 240, "width": 320, "degrees": 60.0,
                # folder of photographs used as surface textures (real-photo statistics, as
                # in the video clips); None = procedural textures
                "textures": None, "num_textures": 12}


def load_textures(folder, num, seed):
    """Up to `num` photos of `folder` (recursively, a seeded choice) as H x W x 3 uint8."""
    if folder is None:
        return None
    names = list_images(folder)
    if not names:
        raise ValueError(f"no texture images in {folder}")
    pick = np.random.default_rng(seed).permutation(len(names))[:num]
    return [read_image(Path(folder) / names[k]) for k in sorted(pick)]


def render_video(conf=None):
    """Render the quality-check video of `conf` (default_conf overrides) -> (frames [H x W x 3 uint8], views [(K, cam_from_world)], scene)."""
    conf = merge_conf(default_conf, conf, "quality")
    textures = load_textures(conf["textures"], conf["num_textures"], conf["seed"])
    scene = random_scene(np.random.default_rng(conf["seed"]), textures=textures)
    views = camera_path(scene, conf["frames"], conf["height"], conf["width"], seed=conf["seed"],
                        degrees=conf["degrees"])
    frames = [render_view(scene, K, T, conf["height"], conf["width"], noise_seed=conf["seed"] * 1000 + i)[0]
              for i, (K, T) in enumerate(views)]
    return frames, views, scene


def label_errors(scene, view0, view1, kp0, kp1, size):
    """Ground-truth error (px) of labels kp0 -> kp1 (N x 2 each); inf when the surface point
    seen at kp0 is sky, occluded in view 1 or outside it. size = (H, W) of view 1."""
    (K0, T0), (K1, T1) = view0, view1
    c0, c1 = camera_centre(T0), camera_centre(T1)
    rays = np.concatenate([kp0, np.ones((len(kp0), 1))], 1) @ np.linalg.inv(K0).T @ T0[:3, :3]
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    t, _ = cast_rays(scene, c0[None], rays)
    X = c0 + np.where(np.isfinite(t), t, 0)[:, None] * rays
    uv, z = project(X, K1, T1)
    v = X - c1
    dist = np.linalg.norm(v, axis=1)
    t1, _ = cast_rays(scene, c1[None], v / np.maximum(dist, 1e-12)[:, None])
    h, w = size
    ok = (np.isfinite(t) & (z > 0) & (np.abs(t1 - dist) < 1e-3 * dist + 1e-4)
          & (uv[:, 0] > -0.5) & (uv[:, 0] < w - 0.5) & (uv[:, 1] > -0.5) & (uv[:, 1] < h - 0.5))
    return np.where(ok, np.linalg.norm(uv - kp1, axis=1), np.inf)


def summarize(errors_per_pair):
    """[errors of one pair] -> {"pairs", "labels_per_pair", "p@1", "p@3", "p@5"}."""
    if not errors_per_pair:
        return {"pairs": 0, "labels_per_pair": 0.0, **{f"p@{t}": float("nan") for t in THRESHOLDS}}
    e = np.concatenate(errors_per_pair)
    return {"pairs": len(errors_per_pair), "labels_per_pair": float(np.mean([len(x) for x in errors_per_pair])),
            **{f"p@{t}": float((e < t).mean()) if len(e) else float("nan") for t in THRESHOLDS}}


def raw_candidate_errors(frames, views, scene, model, conf):
    """Errors of the unfiltered SIFT + model candidates of every third nearby pair (the
    filter's input; a subset, as it costs another matching pass)."""
    lab = FrameLabeller(model, conf["label"])
    errs = []
    for i, j in lab.pairs(len(frames))[::3]:
        c = lab.candidates(lab.features(frames[i]), lab.features(frames[j]))
        errs.append(label_errors(scene, views[i], views[j], c["kp0"], c["kp1"], frames[j].shape[:2]))
    return errs


def label_quality(model, conf=None, labelling=None, video=None):
    """Label a rendered video like a real clip and measure the labels against ground truth.

    video: the output of `render_video(conf)` when already rendered (it takes minutes).
    Returns {"raw": ..., "nearby": ..., "propagated": ...}, each a `summarize` dict.
    """
    conf = merge_conf(default_conf, conf, "quality")
    labelling = merge_conf(label_conf, labelling, "labelling", nested=("label", "propagate"))
    frames, views, scene = video if video is not None else render_video(conf)
    pairs = label_clip_frames(frames, model, labelling)
    errs = {0: [], 1: []}
    for (i, j, kind), lab in sorted(pairs.items()):
        errs[kind].append(label_errors(scene, views[i], views[j], lab["kp0"], lab["kp1"], frames[j].shape[:2]))
    return {"raw": summarize(raw_candidate_errors(frames, views, scene, model, labelling)),
            "nearby": summarize(errs[0]), "propagated": summarize(errs[1])}

