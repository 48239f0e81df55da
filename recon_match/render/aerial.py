"""The aerial sample scene: rolling terrain painted with fields, meadows and roads, box
buildings with roofs, trees; a UAV grid flight (nadir + oblique) and query frames.

World frame: local ENU-like, metres, z up; the terrain undulates around z = 0.
"""

import cv2
import numpy as np

from .cameras import intrinsics, yaw_tilt
from .raycast import Box, Cylinder, Material, Scene, Sphere, Terrain
from .scenes import _Materials, rot_z
from .textures import Texture, cloudy, detail_map, spectral_noise

EXTENT = 320.0  # metres covered by the ground texture (centred on the origin)
GROUND_SIZE = 2048  # texels across EXTENT


def make_aerial_scene(seed=0):
    """Terrain with relief (about +-15 m), ~18 buildings, ~60 trees. Centre at the origin."""
    rng = np.random.default_rng(seed)
    mats = _Materials(rng, 512)
    terrain = Terrain(base=0.0,
                      waves=[(3.0, 2 * np.pi / 250, 2 * np.pi / 400, rng.uniform(0, 6)),
                             (2.0, -2 * np.pi / 300, 2 * np.pi / 140, rng.uniform(0, 6)),
                             (0.8, 2 * np.pi / 90, 2 * np.pi / 110, rng.uniform(0, 6))],
                      hills=[(10.0, 55.0, 40.0, 40.0), (6.0, -60.0, -35.0, 25.0),
                             (-5.0, -20.0, 60.0, 35.0)])
    road_mask = _roads_mask(rng)
    buildings = _place_buildings(rng, terrain, road_mask, 18)
    trees = _place_trees(rng, road_mask, buildings, 60)
    tpm = GROUND_SIZE / EXTENT
    ground = Material(Texture(_landscape(rng, road_mask, buildings)), tpm,
                      Texture(detail_map(rng, 512, strength=0.35, beta=1.0)), 40.0,
                      offset=(EXTENT / 2 * tpm, EXTENT / 2 * tpm))
    scene = Scene([], [], sun=(0.5, -0.4, 0.77), info={"centre": np.zeros(3), "radius": 60.0})
    scene.add(terrain, ground)
    for x, y, w, l, yaw, h in buildings:
        zs = terrain.height(*_footprint(x, y, w + 1, l + 1, yaw).T)
        z0, z1 = zs.min() - 1.0, zs.max() + h
        R = rot_z(yaw)
        scene.add(Box((x, y, (z0 + z1) / 2), (w / 2, l / 2, (z1 - z0) / 2), R),
                  mats.random(["plaster", "brick", "paint", "stone"], (80, 200)))
        scene.add(Box((x, y, z1 + 0.15), (w / 2 + 0.4, l / 2 + 0.4, 0.15), R),
                  mats.random(["roof", "metal", "asphalt"], (60, 150)))
        if rng.uniform() < 0.4:  # a roof structure (stairwell, air handling)
            scene.add(Box((x + w / 6, y, z1 + 1.3), (w / 6, l / 5, 1.0), R), mats.get("metal", 100))
    foliage, bark = mats.get("foliage", 60, 250), mats.get("wood", 200)
    for x, y, r in trees:
        z = float(terrain.height(x, y))
        scene.add(Cylinder((x, y, z - 0.5), 0.25, 2.0 + 0.5), bark)
        scene.add(Sphere((x, y, z + 1.6 + r), r), foliage)
    return scene


def aerial_cameras(scene, seed=0, width=640, height=480, focal=500.0):
    """(references, queries) as lists of (name, K, cam_from_world).

    References: a 4 x 6 nadir grid at 60 m (spacing for ~70% overlap both ways, fixed
    heading) plus 8 oblique views (35 deg tilt) from around the block looking inwards.
    Queries: 12 views at 40-80 m, other headings (+-45 deg) and tilts (0-25 deg).
    """
    K = intrinsics(focal, focal, width, height)
    rng = np.random.default_rng(seed + 7)
    refs = []
    for x in (-34.5, -11.5, 11.5, 34.5):
        for y in (-42.5, -25.5, -8.5, 8.5, 25.5, 42.5):
            refs.append(yaw_tilt((x, y, 60.0), 0.0, 0.0))
    for k in range(8):
        a = 2 * np.pi * k / 8 + 0.2
        pos = np.array([62 * np.cos(a), 62 * np.sin(a), 55.0])
        yaw = np.arctan2(pos[0], -pos[1])  # image top towards the centre
        refs.append(yaw_tilt(pos, yaw, np.deg2rad(35)))
    queries = []
    for _ in range(12):
        pos = (rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(40, 80))
        queries.append(yaw_tilt(pos, rng.uniform(-np.pi / 4, np.pi / 4), np.deg2rad(rng.uniform(0, 25))))
    return ([(f"ref_{i:03d}.jpg", K, T) for i, T in enumerate(refs)],
            [(f"query_{i:03d}.jpg", K, T) for i, T in enumerate(queries)])


def _to_texel(xy):
    return (np.asarray(xy) + EXTENT / 2) * GROUND_SIZE / EXTENT


def _footprint(x, y, w, l, yaw):
    corners = np.array([[-w, -l], [w, -l], [w, l], [-w, l]]) / 2
    return corners @ rot_z(yaw)[:2, :2].T + (x, y)


def _roads_mask(rng):
    """uint8 GROUND_SIZE^2 mask: 255 on asphalt roads, 128 on dirt tracks."""
    mask = np.zeros((GROUND_SIZE, GROUND_SIZE), np.uint8)
    tpm = GROUND_SIZE / EXTENT
    for value, count, width in ((255, 2, 6.0), (128, 3, 2.5)):
        for _ in range(count):
            a = rng.uniform(0, np.pi)
            c = rng.uniform(-60, 60, 2)
            s = np.linspace(-EXTENT, EXTENT, 40)
            bend = 15 * np.sin(s / rng.uniform(40, 90) + rng.uniform(0, 6))
            pts = c + s[:, None] * (np.cos(a), np.sin(a)) + bend[:, None] * (-np.sin(a), np.cos(a))
            cv2.polylines(mask, [np.round(_to_texel(pts) * 16).astype(np.int32)], False, value,
                          int(width * tpm), cv2.LINE_AA, shift=4)
    return mask


def _place_buildings(rng, terrain, road_mask, count):
    """Rows (x, y, width, length, yaw, height) clear of roads and of each other."""
    dist = cv2.distanceTransform((road_mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
    dist *= EXTENT / GROUND_SIZE
    out = []
    for _ in range(count * 50):
        if len(out) == count:
            break
        x, y = rng.uniform(-75, 75, 2)
        w, l = rng.uniform(8, 18), rng.uniform(6, 12)
        u, v = np.clip(_to_texel((x, y)).astype(int), 0, GROUND_SIZE - 1)
        r = np.hypot(w, l) / 2
        if dist[v, u] < r + 2 or any(np.hypot(x - b[0], y - b[1]) < r + np.hypot(b[2], b[3]) / 2 + 3
                                     for b in out):
            continue
        out.append((x, y, w, l, rng.uniform(0, np.pi), rng.uniform(4, 12)))
    return out


def _place_trees(rng, road_mask, buildings, count):
    """Rows (x, y, crown radius) in a few clusters, off roads and buildings."""
    out = []
    centres = rng.uniform(-80, 80, (6, 2))
    for _ in range(count * 30):
        if len(out) == count:
            break
        x, y = centres[rng.integers(len(centres))] + rng.normal(0, 14, 2)
        r = rng.uniform(1.5, 3.5)
        u, v = np.clip(_to_texel((x, y)).astype(int), 0, GROUND_SIZE - 1)
        if road_mask[v, u] or any(np.hypot(x - b[0], y - b[1]) < np.hypot(b[2], b[3]) / 2 + r + 1
                                  for b in buildings):
            continue
        if any(np.hypot(x - t[0], y - t[1]) < r + t[2] for t in out):
            continue
        out.append((x, y, r))
    return out


def _landscape(rng, road_mask, buildings):
    """GROUND_SIZE^2 x 3 ground colour: meadow, fields with crop rows, yards, roads."""
    n = GROUND_SIZE
    img = cv2.resize(cloudy(rng, n // 2, (0.30, 0.42, 0.16), (0.50, 0.55, 0.25), beta=2.2,
                            contrast=0.28, grain=0.0), (n, n), interpolation=cv2.INTER_CUBIC)
    crops = [(0.78, 0.68, 0.40), (0.48, 0.36, 0.24), (0.36, 0.50, 0.18), (0.60, 0.62, 0.30),
             (0.25, 0.36, 0.14)]
    noise = np.tile(spectral_noise(rng, n // 4, 1.8)[0], (4, 4))
    for _ in range(14):
        _paint_field(rng, img, noise, crops)
    yards = np.zeros((n, n), np.uint8)
    for x, y, w, l, yaw, _ in buildings:
        cv2.fillPoly(yards, [np.round(_to_texel(_footprint(x, y, w + 8, l + 8, yaw)) * 16)
                             .astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    layer = (lambda c0, c1, beta: np.tile(cloudy(rng, n // 4, c0, c1, beta=beta, contrast=0.2,
                                                 grain=0.1), (4, 4, 1)))
    img = _blend(img, layer((0.55, 0.53, 0.50), (0.68, 0.66, 0.62), 1.0), yards)
    img = _blend(img, layer((0.50, 0.42, 0.30), (0.62, 0.54, 0.40), 1.5),
                 np.where(road_mask == 128, 255, 0).astype(np.uint8))
    img = _blend(img, layer((0.24, 0.24, 0.25), (0.34, 0.34, 0.35), 1.2),
                 np.where(road_mask > 128, road_mask, 0).astype(np.uint8))
    return np.clip(img, 0, 1).astype(np.float32)


def _paint_field(rng, img, noise, crops):
    """Paint one rotated rectangular field with crop rows into `img` (in place)."""
    n = img.shape[0]
    c, half, a = rng.uniform(0, n, 2), rng.uniform(120, 380, 2), rng.uniform(0, np.pi)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    poly = (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half) @ R.T + c
    x0, y0 = np.clip(np.floor(poly.min(0)).astype(int), 0, n)
    x1, y1 = np.clip(np.ceil(poly.max(0)).astype(int) + 1, 0, n)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rows = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / rng.uniform(5, 14))
    colour = np.clip(np.asarray(crops[rng.integers(len(crops))]) + rng.uniform(-0.05, 0.05, 3), 0, 1)
    field = colour * ((0.85 + 0.15 * rows) * (1 + 0.12 * noise[y0:y1, x0:x1]))[..., None]
    m = mask.astype(np.float32)[..., None] / 255
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - m) + field * m


def _blend(img, layer, mask_u8):
    m = cv2.GaussianBlur(mask_u8, (3, 3), 0).astype(np.float32)[..., None] / 255
    return img * (1 - m) + layer * m
