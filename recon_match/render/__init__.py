"""Photo-like multi-view scene renderer with exact ground truth (numpy, CPU, deterministic).

Conventions: world frame in metres, z up; poses are COLMAP world-to-camera 4 x 4
`cam_from_world` (camera x right, y down, z forward); K is 3 x 3 in the pixel-centre
convention of `recon_match.coords` (COLMAP's cx, cy are K[0, 2] + 0.5, K[1, 2] + 0.5);
depth is the camera z (metres) of the surface seen through each pixel centre, 0 for sky.

Public API (stable):
- `render_view(scene, K, cam_from_world, height, width, *, supersample=1, noise_seed=None)`
  -> (image H x W x 3 uint8 RGB, depth H x W float32).
- `cast_rays(scene, origins, directions)` -> (t, primitive index): exact ray hits, for
  checking correspondences (directions unit length; N x 3 or a shared 1 x 3).
- `make_object_scene(seed=0, textures=None)`, `make_aerial_scene(seed=0)` -> Scene;
  `object_cameras(scene, ...)`, `aerial_cameras(scene, ...)` -> [(name, K, cam_from_world)].
- `random_scene(rng, textures=None)` -> Scene: random boxes/spheres/cylinders on a ground
  inside walls; textures from a list of H x W x 3 arrays (uint8 or float in [0, 1]) or
  procedural when None.
- `random_camera_pair(rng, scene, height, width)` -> (K0, T0, K1, T1) with real baseline,
  both looking into the scene's middle (overlapping views).
- `camera_path(scene, num_frames, height, width, seed=0)` -> [(K, cam_from_world)]: a
  smooth orbit for rendered video.
- `ensure_sample_scene(name, root=None, force=False)` -> Path of `object` or `aerial`,
  rendered into `<repo>/sample_scenes/<name>` on first use and cached.
- Building blocks: `Scene`, `Material`, `Texture`, primitives `Quad`, `Box`, `Sphere`,
  `Cylinder`, `Terrain`, camera helpers `intrinsics`, `look_at`, `yaw_tilt`.
"""

from .aerial import aerial_cameras, make_aerial_scene
from .cameras import camera_centre, intrinsics, look_at, yaw_tilt
from .random_scenes import camera_path, random_camera_pair, random_scene
from .raycast import Box, Cylinder, Material, Quad, Scene, Sphere, Terrain, cast_rays
from .sample import ensure_sample_scene, sample_scene_names, write_colmap_text
from .scenes import make_object_scene, object_cameras
from .shading import render_view
from .textures import PROCEDURAL, Texture, procedural

__all__ = [
    "Box", "Cylinder", "Material", "PROCEDURAL", "Quad", "Scene", "Sphere", "Terrain", "Texture",
    "aerial_cameras", "camera_centre", "camera_path", "cast_rays", "ensure_sample_scene",
    "intrinsics", "look_at", "make_aerial_scene", "make_object_scene", "object_cameras",
    "procedural", "random_camera_pair", "random_scene", "render_view", "sample_scene_names",
    "write_colmap_text", "yaw_tilt",
]
