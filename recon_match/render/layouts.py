"""The bundled sample scenes: which scene, which cameras, which files.

Each entry of `SAMPLE_SCENES` renders one scene into a folder and returns timing stats.
"""

import numpy as np

from .sample import render_views, write_gps_csv
from .scenes import make_object_scene, object_cameras

WIDTH, HEIGHT, FOCAL = 640, 480, 500.0


def write_object(out_dir, seed=0):
    """`object`: 20 views on a ring around a courtyard monument (images/, gt/, depth/)."""
    scene = make_object_scene(seed)
    views = object_cameras(scene, 20, WIDTH, HEIGHT, FOCAL)
    spv = render_views(scene, views, out_dir, WIDTH, HEIGHT, seed=seed, supersample=1,
                       desc="object")
    return {"images": len(views), "seconds_per_view": round(spv, 3)}


def write_aerial(out_dir, seed=0):
    """`aerial`: grid-flight references (images/, gt/, depth/), queries (queries/,
    queries_gt/, depth_queries/) and noisy GPS positions of both (gps.csv)."""
    from .aerial import aerial_cameras, make_aerial_scene
    scene = make_aerial_scene(seed)
    refs, queries = aerial_cameras(scene, seed, WIDTH, HEIGHT, FOCAL)
    spv = render_views(scene, refs, out_dir, WIDTH, HEIGHT, seed=seed, desc="aerial refs")
    spq = render_views(scene, queries, out_dir, WIDTH, HEIGHT, images="queries", gt="queries_gt",
                       depth="depth_queries", seed=seed + 1, desc="aerial queries")
    write_gps_csv(out_dir / "gps.csv", refs + queries, np.random.default_rng(seed + 2), sigma=1.5)
    return {"images": len(refs), "queries": len(queries), "gps_sigma_m": 1.5,
            "seconds_per_view": round((spv * len(refs) + spq * len(queries))
                                      / (len(refs) + len(queries)), 3)}


SAMPLE_SCENES = {"object": write_object, "aerial": write_aerial}
