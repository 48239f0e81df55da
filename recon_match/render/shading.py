"""Photo-like shading of ray hits: filtered textures, Lambertian sun + sky ambient, cast
shadows, a sky gradient, optional supersampling and deterministic sensor noise."""

import numpy as np

from .raycast import cast_rays, pixel_rays

SHADOW_OFFSET = 1e-4  # metres along the normal, so shadow rays do not re-hit their surface


def render_view(scene, K, cam_from_world, height, width, *, supersample=1, noise_seed=None,
                noise_sigma=1.5):
    """Render one pinhole view.

    K: 3 x 3 intrinsics in the pixel-centre convention of `recon_match.coords` (the COLMAP
    principal point is K[:2, 2] + 0.5). cam_from_world: 4 x 4 (or 3 x 4) world-to-camera.
    Returns (image H x W x 3 uint8 RGB, depth H x W float32 z-depth in metres of the surface
    seen through each pixel centre, 0 where the ray hits nothing (sky)).
    `supersample` s > 1 averages s x s sub-pixel rays for colour (anti-aliased edges);
    depth always comes from the exact pixel-centre ray. `noise_seed` adds Gaussian sensor
    noise of `noise_sigma` grey levels, the same for the same seed.
    """
    K = np.asarray(K, np.float64)
    o, d, zscale = pixel_rays(K, cam_from_world, height, width)
    t, ids = cast_rays(scene, o, d)
    depth = np.where(np.isfinite(t), t * zscale, 0.0).astype(np.float32).reshape(height, width)
    fx = 0.5 * (K[0, 0] + K[1, 1])
    if supersample <= 1:
        colour = shade(scene, o, d, t, ids, fx)
    else:
        colour = np.zeros((height * width, 3), np.float32)
        steps = (np.arange(supersample) + 0.5) / supersample - 0.5
        for dy in steps:
            for dx in steps:
                o_s, d_s, _ = pixel_rays(K, cam_from_world, height, width, (dx, dy))
                t_s, ids_s = cast_rays(scene, o_s, d_s)
                colour += shade(scene, o_s, d_s, t_s, ids_s, fx * supersample)
        colour /= supersample ** 2
    img = colour.reshape(height, width, 3) * 255.0
    if noise_seed is not None:
        img = img + np.random.default_rng(noise_seed).normal(0, noise_sigma, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), depth


def shade(scene, o, d, t, ids, focal):
    """Linear RGB colour (N x 3 float32 in [0, 1]) of each ray's hit, or of the sky."""
    n = len(d)
    colour = sky_colour(scene, d)
    hit = np.flatnonzero(ids >= 0)
    if hit.size == 0:
        return colour
    sun = np.asarray(scene.sun, np.float64)
    sun /= np.linalg.norm(sun)
    o = np.broadcast_to(o, (n, 3))
    p_all = o[hit] + t[hit, None] * d[hit]
    normals = np.empty((hit.size, 3))
    albedo = np.empty((hit.size, 3), np.float32)
    for i in np.unique(ids[hit]):
        m = ids[hit] == i
        rows = hit[m]
        normal, uv = scene.primitives[i].surface(p_all[m])
        cos_view = np.einsum("ij,ij->i", normal, d[rows])
        normal = np.where((cos_view > 0)[:, None], -normal, normal)  # face the eye
        cos_view = np.abs(cos_view)
        # texel footprint of one pixel on the surface (geometric mean of the two axes)
        footprint = t[rows] / focal / np.sqrt(np.maximum(cos_view, 0.05))
        albedo[m] = _albedo(scene.materials[i], uv, footprint)
        normals[m] = normal
    lambert = np.clip(normals @ sun, 0, None)
    lit = np.flatnonzero(lambert > 0)
    if lit.size:
        origins = p_all[lit] + SHADOW_OFFSET * normals[lit]
        t_sh, _ = cast_rays(scene, origins, sun[None], tmin=0.0, any_hit=True)
        lambert[lit[np.isfinite(t_sh)]] = 0.0
    ambient = scene.ambient * (0.75 + 0.25 * normals[:, 2])  # sky light comes from above
    colour[hit] = albedo * (ambient + scene.sun_strength * lambert)[:, None].astype(np.float32)
    return colour


def _albedo(material, uv, footprint):
    tex = material.texture
    tpm = material.texels_per_metre
    lod = np.log2(np.maximum(footprint * tpm, 1e-6))
    u = uv[:, 0] * tpm + material.offset[0]
    v = uv[:, 1] * tpm + material.offset[1]
    c = tex.sample(u, v, lod)
    if material.detail is not None:
        dt = material.detail_texels_per_metre
        lod_d = np.log2(np.maximum(footprint * dt, 1e-6))
        c = c * material.detail.sample(uv[:, 0] * dt, uv[:, 1] * dt, lod_d)
    return c


def sky_colour(scene, d):
    """Smooth sky gradient by elevation (weakly textured, infinitely far)."""
    horizon, zenith = (np.asarray(c, np.float32) for c in scene.sky)
    e = np.clip(d[:, 2], 0, 1).astype(np.float32)[:, None] ** 0.6
    return np.broadcast_to(horizon + (zenith - horizon) * e, (len(d), 3)).copy()
