"""Random multi-object scenes and camera pairs/paths for training data and rendered video.

A random scene: textured ground, 3-4 walls 11-15 m from the middle, and 5-12 boxes
(axis-aligned or rotated, some stacked), spheres and cylinders within 4.5 m of the middle.
Cameras stay within 9 m of the middle, so they are always inside the walls.
"""

import numpy as np

from .cameras import intrinsics, look_at
from .raycast import Box, Cylinder, Quad, Scene, Sphere
from .scenes import _Materials, rot_z

SURFACES = ["brick", "stone", "paving", "plaster", "paint", "grass", "soil", "asphalt", "wood",
            "marble", "foliage", "leaves", "roof", "metal"]


def random_scene(rng, textures=None, texture_size=256):
    """A random scene; `textures`: optional list of H x W x 3 arrays used instead of
    procedural textures (each surface draws one at random, at a random scale)."""
    mats = _Materials(rng, texture_size, textures)
    scene = Scene([], [], sun=_random_sun(rng), ambient=rng.uniform(0.3, 0.5),
                  sun_strength=rng.uniform(0.5, 0.9),
                  info={"centre": np.array([0.0, 0.0, 0.8]), "radius": 4.5, "max_camera_radius": 9.0})
    scene.add(Quad((-30, -30, 0), (60, 0, 0), (0, 60, 0)), mats.random(SURFACES, (40, 200)))
    for k in rng.permutation(4)[: rng.integers(3, 5)]:
        a, dist, height = k * np.pi / 2, rng.uniform(11, 15), rng.uniform(3, 8)
        centre = (dist * np.cos(a), dist * np.sin(a), height / 2)
        half = (0.2, 16, height / 2) if k % 2 == 0 else (16, 0.2, height / 2)
        scene.add(Box(centre, half), mats.random(SURFACES, (30, 200)))
    for _ in range(rng.integers(5, 13)):
        _add_object(rng, scene, mats)
    return scene


def _random_sun(rng):
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(np.deg2rad(30), np.deg2rad(75))
    return (np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el))


def _add_object(rng, scene, mats):
    r, a = 4.5 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
    x, y = r * np.cos(a), r * np.sin(a)
    kind = rng.choice(["box", "box", "sphere", "cylinder"])
    mat = mats.random(SURFACES, (80, 400))
    if kind == "box":
        half = rng.uniform(0.2, 1.0, 3)
        z = half[2] + (rng.uniform(0, 1.5) if rng.uniform() < 0.25 else 0.0)  # some float/stack
        scene.add(Box((x, y, z), half, rot_z(rng.uniform(0, np.pi))), mat)
    elif kind == "sphere":
        rad = rng.uniform(0.25, 0.9)
        scene.add(Sphere((x, y, rad + rng.uniform(0, 1.0)), rad), mat)
    else:
        scene.add(Cylinder((x, y, 0), rng.uniform(0.15, 0.6), rng.uniform(0.5, 3.0)), mat)


def random_camera_pair(rng, scene, height, width, max_angle=35.0):
    """(K0, T0, K1, T1): two views of the scene's middle, 4-9 m away, 5-`max_angle` degrees
    apart around it, with different heights, distances, focal lengths and small rolls."""
    c = np.asarray(scene.info["centre"], np.float64)
    rmax = scene.info.get("max_camera_radius", 9.0)
    az0 = rng.uniform(0, 2 * np.pi)
    az1 = az0 + np.deg2rad(rng.uniform(5, max_angle)) * rng.choice([-1, 1])
    out = []
    for az in (az0, az1):
        dist = rng.uniform(4.0, rmax)
        eye = c + (dist * np.cos(az), dist * np.sin(az), rng.uniform(0.5, 4.0))
        target = c + rng.normal(0, 0.5, 3)
        f = width / (2 * np.tan(np.deg2rad(rng.uniform(50, 75)) / 2))
        out += [intrinsics(f, f, width, height), look_at(eye, target, roll=rng.normal(0, 0.05))]
    return tuple(out)


def camera_path(scene, num_frames, height, width, seed=0, degrees=120.0):
    """A smooth orbit of `num_frames` views over `degrees` around the scene's middle, with
    gently varying height, distance and aim: consecutive frames are video-like."""
    rng = np.random.default_rng(seed)
    c = np.asarray(scene.info["centre"], np.float64)
    rmax = scene.info.get("max_camera_radius", 9.0)
    K = intrinsics(0.8 * width, 0.8 * width, width, height)
    phase = rng.uniform(0, 2 * np.pi, 4)
    az0 = rng.uniform(0, 2 * np.pi)
    views = []
    for s in np.linspace(0, 1, num_frames):
        az = az0 + np.deg2rad(degrees) * s
        dist = (0.55 + 0.1 * np.sin(2 * np.pi * s + phase[0])) * rmax
        eye = c + (dist * np.cos(az), dist * np.sin(az), 1.8 + 0.8 * np.sin(2 * np.pi * s + phase[1]))
        aim = c + 0.6 * np.array([np.sin(3 * s + phase[2]), np.cos(3 * s + phase[3]), 0.0])
        views.append((K, look_at(eye, aim)))
    return views
