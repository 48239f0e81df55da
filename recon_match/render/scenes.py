"""Scene definitions: the two sample scenes and random scenes for training pairs.

All scenes are deterministic functions of their seed (numpy `Generator`s only).
World frame: metres, z up, ground near z = 0.
"""

import numpy as np

from .raycast import Box, Cylinder, Material, Quad, Scene, Sphere
from .textures import Texture, detail_map, procedural


def rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


class _Materials:
    """Builds materials from procedural textures (cached per name) or user images."""

    def __init__(self, rng, size=512, textures=None):
        self.rng, self.size = rng, size
        self.cache = {}
        self.user = [Texture(t, max_size=1024) for t in (textures or [])]
        self.detail = Texture(detail_map(rng, 256, strength=0.2))

    def get(self, name, texels_per_metre, detail_tpm=None):
        if name not in self.cache:
            self.cache[name] = Texture(procedural(name, self.rng, self.size))
        return self._material(self.cache[name], texels_per_metre, detail_tpm)

    def unique(self, name, texels_per_metre, detail_tpm=None):
        """A fresh draw of a procedural texture, shared with no other surface."""
        return self._material(Texture(procedural(name, self.rng, self.size)), texels_per_metre,
                              detail_tpm)

    def random(self, names, tpm_range=(60, 250)):
        """A random user texture if any were given, else a random procedural one."""
        tpm = float(np.exp(self.rng.uniform(*np.log(tpm_range))))
        if self.user:
            return self._material(self.user[self.rng.integers(len(self.user))], tpm, 4 * tpm)
        return self.get(str(self.rng.choice(names)), tpm, 4 * tpm)

    def _material(self, tex, tpm, detail_tpm):
        offset = tuple(self.rng.uniform(0, 4096, 2))
        if detail_tpm is None:
            return Material(tex, tpm, offset=offset)
        return Material(tex, tpm, self.detail, detail_tpm, offset=offset)


def make_object_scene(seed=0, textures=None):
    """A courtyard with a stepped monument (boxes, column, sphere), crates and benches,
    walls of brick, stone and plain plaster (weakly textured) around. Centre at the origin.
    """
    rng = np.random.default_rng(seed)
    mats = _Materials(rng, 1024, textures)
    scene = Scene([], [], info={"centre": np.array([0.0, 0.0, 1.0]), "radius": 4.0})
    scene.add(Quad((-20, -20, 0), (40, 0, 0), (0, 40, 0)), mats.get("soil", 120, 500))
    scene.add(Box((0, 0, 0.03), (5.0, 5.0, 0.03)), mats.get("paving", 110, 400))
    walls = [((0, 12.2, 2.5), (12.6, 0.2, 2.5), "brick", 180),
             ((12.2, 0, 2.2), (0.2, 12.0, 2.2), "stone", 90),
             ((0, -12.2, 3.0), (12.6, 0.2, 3.0), "plaster", 60),
             ((-12.2, 0, 2.0), (0.2, 12.0, 2.0), "brick", 200)]
    for centre, half, name, tpm in walls:
        _add_wall(scene, mats, centre, half, name, tpm)
    # the monument: two-stepped plinth, column, sphere on top
    scene.add(Box((0, 0, 0.35), (1.5, 1.5, 0.35)), mats.get("stone", 220, 600))
    scene.add(Box((0, 0, 0.95), (1.0, 1.0, 0.25), rot_z(np.pi / 4)), mats.get("marble", 300, 600))
    scene.add(Cylinder((0, 0, 1.2), 0.45, 2.2), mats.get("marble", 260))
    scene.add(Sphere((0, 0, 4.0), 0.6), mats.get("metal", 300))
    # crates, a bench, a painted kiosk (near uniform) and a ball around it
    crates = [((2.9, 1.6, 0.45), (0.45, 0.45, 0.45), 0.35), ((2.9, 1.6, 1.2), (0.3, 0.3, 0.3), 0.9),
              ((-2.6, 2.4, 0.35), (0.6, 0.35, 0.35), -0.3), ((1.6, -3.1, 0.5), (0.5, 0.7, 0.5), 0.1)]
    for centre, half, yaw in crates:
        scene.add(Box(centre, half, rot_z(yaw)), mats.get("wood", 240, 800))
    scene.add(Box((-3.2, -1.8, 0.25), (1.2, 0.3, 0.25), rot_z(0.6)), mats.get("plaster", 80))
    scene.add(Box((-5.5, 5.5, 1.3), (0.8, 0.8, 1.3), rot_z(0.3)), mats.get("paint", 60))
    scene.add(Sphere((-2.3, -3.6, 0.55), 0.55), mats.get("leaves", 500))
    scene.add(Cylinder((3.6, -2.2, 0), 0.35, 1.6), mats.get("brick", 300, 600))
    scene.add(Cylinder((-4.6, -4.2, 0), 0.6, 0.9), mats.get("foliage", 250))
    return scene


def _add_wall(scene, mats, centre, half, name, tpm):
    """A wall as segments no longer than one texture period, each with its own draw of the
    texture. A tiled texture repeats exactly along a wall (and across walls sharing it); every
    matcher then registers one copy onto another and the ring folds."""
    axis = int(np.argmax(half[:2]))
    count = int(np.ceil(2 * half[axis] * tpm / mats.size))
    for k in range(count):
        c, h = np.array(centre, np.float64), np.array(half, np.float64)
        h[axis] = half[axis] / count
        c[axis] = centre[axis] - half[axis] + (2 * k + 1) * h[axis]
        scene.add(Box(c, h), mats.unique(name, tpm, 400))


def object_cameras(scene, num=20, width=640, height=480, focal=500.0):
    """A ring of `num` views around the centre, alternately higher and lower, all looking
    at the monument: neighbouring views are 360/num degrees apart."""
    from .cameras import intrinsics, look_at
    K = intrinsics(focal, focal, width, height)
    views = []
    for i in range(num):
        a = 2 * np.pi * i / num + 0.3
        radius = 7.5 + 0.6 * np.sin(3 * a)
        eye = (radius * np.cos(a), radius * np.sin(a), 2.6 + 0.9 * np.cos(2 * a) + 0.4 * (i % 2))
        target = scene.info["centre"] + (0.4 * np.sin(a), 0.4 * np.cos(a), 0.3 * (i % 3) / 2)
        views.append((f"view_{i:03d}.jpg", K, look_at(eye, target)))
    return views
