"""Generator 3: rendered multi-view scenes (known geometry, like MegaDepth but unlimited).

A random scene from `recon_match.render` (ground, walls, boxes, spheres, cylinders) textured
with images from our sources, seen by two cameras with a real baseline. Ground truth comes
from the rendered depth of both views (`geometry.warp_from_depth`, with the other view's
depth for occlusion), in both directions.
"""

import numpy as np

from ..geometry import warp_from_depth

default_conf = {
    "num_textures": 4,      # textures drawn from the image sources per scene (0 = procedural)
    "texture_size": 128,
    "rel_tol": 0.01,        # depth agreement for covisibility
}


def make_pair(rng, source, h, w, conf=None):
    """A rendered pair; same outputs as the lifting generator (with depth and cameras)."""
    from ..render import random_camera_pair, random_scene, render_view  # heavy; only when used

    conf = {**default_conf, **(conf or {})}
    ts = conf["texture_size"]
    textures = [source(rng, ts, ts)[0] for _ in range(conf["num_textures"])] or None
    scene = random_scene(rng, textures=textures)
    K0, T0, K1, T1 = random_camera_pair(rng, scene, h, w)
    seeds = rng.integers(0, 2 ** 31, size=2)
    img0, d0 = render_view(scene, K0, T0, h, w, noise_seed=int(seeds[0]))
    img1, d1 = render_view(scene, K1, T1, h, w, noise_seed=int(seeds[1]))
    warp0, valid0 = warp_from_depth(d0, K0, T0, K1, T1, d1, rel_tol=conf["rel_tol"])
    warp1, valid1 = warp_from_depth(d1, K1, T1, K0, T0, d0, rel_tol=conf["rel_tol"])
    depth = [np.where(d > 0, d, np.inf).astype(np.float32) for d in (d0, d1)]
    return {"image0": img0, "image1": img1, "warp0": warp0, "valid0": valid0, "warp1": warp1,
            "valid1": valid1, "depth0": depth[0], "depth1": depth[1], "K0": K0, "K1": K1,
            "T0": T0, "T1": T1, "source": "render"}
