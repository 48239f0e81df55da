"""Exact, vectorized ray casting against analytic primitives, and Lambertian shading.

Rays are numpy arrays: origins `o` and unit directions `d`, each N x 3 or 1 x 3 (shared by
all rays, e.g. a pinhole centre or the sun direction). Every primitive answers
`intersect(o, d, tmin) -> t` (N, np.inf where missed) in closed form (the terrain by
conservative Lipschitz marching to 1e-6 m), so depth is exact at pixel centres, and
`surface(p) -> (normal N x 3, uv N x 2 in metres)` at hit points. World frame: metres, z up.
"""

from dataclasses import dataclass, field

import numpy as np

from .textures import Texture


def _rows(a, idx):
    """Select rays `idx` of a ray array that may be shared (1 x 3)."""
    return a if a.shape[0] == 1 else a[idx]


@dataclass
class Material:
    """A texture mapped at `texels_per_metre`, with an optional fine multiplicative detail map."""
    texture: Texture
    texels_per_metre: float
    detail: Texture | None = None
    detail_texels_per_metre: float = 0.0
    offset: tuple = (0.0, 0.0)  # texel offset so surfaces sharing a texture differ


class Quad:
    """Rectangle `corner + a*e1 + b*e2`, a, b in [0, 1]; e1, e2 orthogonal (metres)."""

    def __init__(self, corner, e1, e2):
        self.corner, self.e1, self.e2 = (np.asarray(x, np.float64) for x in (corner, e1, e2))
        n = np.cross(self.e1, self.e2)
        self.normal = n / np.linalg.norm(n)
        self.l1, self.l2 = np.linalg.norm(self.e1), np.linalg.norm(self.e2)
        self.centre = self.corner + 0.5 * (self.e1 + self.e2)
        self.radius = 0.5 * np.hypot(self.l1, self.l2)

    def intersect(self, o, d, tmin):
        dn = d @ self.normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((self.corner - o) @ self.normal) / dn
        p = o + t[:, None] * d - self.corner
        a, b = p @ self.e1 / self.l1 ** 2, p @ self.e2 / self.l2 ** 2
        ok = (t > tmin) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
        return np.where(ok, t, np.inf)

    def surface(self, p):
        q = p - self.corner
        uv = np.stack([q @ self.e1 / self.l1, q @ self.e2 / self.l2], -1)
        return np.broadcast_to(self.normal, p.shape), uv


class Box:
    """Oriented box: `centre`, half sizes `half` (3), rotation `R` whose columns are its axes."""

    def __init__(self, centre, half, R=None):
        self.centre = np.asarray(centre, np.float64)
        self.half = np.asarray(half, np.float64)
        self.R = np.eye(3) if R is None else np.asarray(R, np.float64)
        self.radius = float(np.linalg.norm(self.half))

    def intersect(self, o, d, tmin):
        # slab test, one axis at a time on contiguous rows (reductions over a length-3 axis are slow)
        ol, dl = self.R.T @ (o - self.centre).T, self.R.T @ d.T
        n = max(o.shape[0], d.shape[0])
        tnear, tfar = np.full(n, -np.inf), np.full(n, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(3):
                inv = 1.0 / np.where(dl[k] == 0, 1e-300, dl[k])
                t1, t2 = (-self.half[k] - ol[k]) * inv, (self.half[k] - ol[k]) * inv
                np.maximum(tnear, np.minimum(t1, t2), out=tnear)
                np.minimum(tfar, np.maximum(t1, t2), out=tfar)
        t = np.where(tnear > tmin, tnear, tfar)
        return np.where((tnear <= tfar) & (t > tmin), t, np.inf)

    def surface(self, p):
        pl = (p - self.centre) @ self.R
        axis = np.argmax(np.abs(pl) / self.half, -1)
        sign = np.sign(pl[np.arange(len(p)), axis])
        normal = self.R.T[axis] * sign[:, None]
        # walls: u horizontal, v up; top/bottom: (x, y)
        ui = np.array([1, 0, 0])[axis]
        vi = np.array([2, 2, 1])[axis]
        rows = np.arange(len(p))
        uv = np.stack([pl[rows, ui] + self.half[ui], pl[rows, vi] + self.half[vi]], -1)
        return normal, uv


class Sphere:
    def __init__(self, centre, radius):
        self.centre = np.asarray(centre, np.float64)
        self.radius = float(radius)

    def intersect(self, o, d, tmin):
        w = o - self.centre
        b = d @ w[0] if w.shape[0] == 1 else (w @ d[0] if d.shape[0] == 1 else _dot(w, d))
        c = _dot(w, w) - self.radius ** 2
        disc = b * b - c
        s = np.sqrt(np.maximum(disc, 0))
        t0, t1 = -b - s, -b + s
        t = np.where(t0 > tmin, t0, t1)
        return np.where((disc >= 0) & (t > tmin), t, np.inf)

    def surface(self, p):
        q = (p - self.centre) / self.radius
        lon = np.arctan2(q[:, 1], q[:, 0])
        lat = np.arcsin(np.clip(q[:, 2], -1, 1))
        return q, np.stack([(lon + np.pi) * self.radius, (lat + np.pi / 2) * self.radius], -1)


class Cylinder:
    """Capped cylinder: base centre, axis rotation `R` (local z = axis), radius, height."""

    def __init__(self, base, radius, height, R=None):
        self.base = np.asarray(base, np.float64)
        self.r, self.h = float(radius), float(height)
        self.R = np.eye(3) if R is None else np.asarray(R, np.float64)
        self.centre = self.base + self.R[:, 2] * self.h / 2
        self.radius = float(np.hypot(self.r, self.h / 2))

    def intersect(self, o, d, tmin):
        ol, dl = (o - self.base) @ self.R, d @ self.R
        ol, dl = np.broadcast_to(ol, np.broadcast_shapes(ol.shape, dl.shape)), dl
        a = dl[:, 0] ** 2 + dl[:, 1] ** 2
        b = ol[:, 0] * dl[:, 0] + ol[:, 1] * dl[:, 1]
        c = ol[:, 0] ** 2 + ol[:, 1] ** 2 - self.r ** 2
        disc = b * b - a * c
        s = np.sqrt(np.maximum(disc, 0))
        best = np.full(len(ol), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for t in ((-b - s) / a, (-b + s) / a):
                z = ol[:, 2] + t * dl[:, 2]
                ok = (disc >= 0) & (a > 1e-18) & (t > tmin) & (z >= 0) & (z <= self.h)
                best = np.where(ok & (t < best), t, best)
            for zc in (0.0, self.h):
                t = (zc - ol[:, 2]) / dl[:, 2]
                x, y = ol[:, 0] + t * dl[:, 0], ol[:, 1] + t * dl[:, 1]
                ok = (t > tmin) & (x * x + y * y <= self.r ** 2)
                best = np.where(ok & (t < best), t, best)
        return best

    def surface(self, p):
        pl = (p - self.base) @ self.R
        rho = np.hypot(pl[:, 0], pl[:, 1])
        cap = (np.abs(pl[:, 2]) < 1e-7 * max(1, self.h)) | (np.abs(pl[:, 2] - self.h) < 1e-7 * max(1, self.h))
        cap |= rho < self.r * (1 - 1e-6)
        nl = np.where(cap[:, None], np.array([0, 0, 1.0]) * np.sign(pl[:, 2:3] - self.h / 2),
                      np.stack([pl[:, 0], pl[:, 1], 0 * rho], -1) / np.maximum(rho, 1e-12)[:, None])
        ang = (np.arctan2(pl[:, 1], pl[:, 0]) + np.pi) * self.r
        uv = np.where(cap[:, None], pl[:, :2], np.stack([ang, pl[:, 2]], -1))
        return nl @ self.R.T, uv


class Terrain:
    """Height field z = h(x, y): a base level plus sinusoids and Gaussian hills (metres).

    `waves`: rows (amplitude, kx, ky, phase); `hills`: rows (amplitude, x, y, sigma).
    Its slope is bounded by L = sum |a| |k| + sum |a| / sigma * exp(-1/2), which makes
    sphere-tracing-like steps along a ray safe: they never jump through the surface.
    """

    radius = None  # unbounded: every ray is tested
    casts_shadow = False

    def __init__(self, base=0.0, waves=(), hills=()):
        self.base = float(base)
        self.waves = np.asarray(waves, np.float64).reshape(-1, 4)
        self.hills = np.asarray(hills, np.float64).reshape(-1, 4)
        a, k = np.abs(self.waves[:, 0]), np.hypot(self.waves[:, 1], self.waves[:, 2])
        ha, hs = np.abs(self.hills[:, 0]), self.hills[:, 3]
        self.lipschitz = float((a * k).sum() + (ha / hs).sum() * np.exp(-0.5)) + 1e-9
        self.zmax = self.base + a.sum() + np.clip(self.hills[:, 0], 0, None).sum()
        self.zmin = self.base - a.sum() + np.clip(self.hills[:, 0], None, 0).sum()

    def height(self, x, y):
        z = np.full(np.broadcast_shapes(np.shape(x), np.shape(y)), self.base)
        for a, kx, ky, ph in self.waves:
            z = z + a * np.sin(kx * x + ky * y + ph)
        for a, cx, cy, s in self.hills:
            z = z + a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
        return z

    def gradient(self, x, y):
        gx, gy = np.zeros_like(x), np.zeros_like(x)
        for a, kx, ky, ph in self.waves:
            c = a * np.cos(kx * x + ky * y + ph)
            gx, gy = gx + c * kx, gy + c * ky
        for a, cx, cy, s in self.hills:
            e = a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s)) / (s * s)
            gx, gy = gx - e * (x - cx), gy - e * (y - cy)
        return gx, gy

    def intersect(self, o, d, tmin, tmax=None, eps=1e-6, max_iter=2000):
        n = max(o.shape[0], d.shape[0])
        o, d = np.broadcast_to(o, (n, 3)), np.broadcast_to(d, (n, 3))
        tmax = np.full(n, np.inf) if tmax is None else np.asarray(tmax, np.float64)
        rate = np.maximum(-d[:, 2], 0) + self.lipschitz * np.hypot(d[:, 0], d[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            t_top = np.where(d[:, 2] < 0, (self.zmax - o[:, 2]) / d[:, 2], 0.0)
            # leaving the slab zmin..zmax ends the search (upwards: through the top)
            t_bot = np.where(d[:, 2] < 0, (self.zmin - o[:, 2]) / d[:, 2],
                             np.where(d[:, 2] > 0, (self.zmax - o[:, 2]) / d[:, 2], np.inf))
        t = np.maximum(np.maximum(t_top, 0.0), tmin)
        out = np.full(n, np.inf)
        active = np.flatnonzero((rate > 0) & (t < np.minimum(t_bot, tmax)))
        for _ in range(max_iter):
            if active.size == 0:
                break
            ta, oa, da = t[active], o[active], d[active]
            p = oa + ta[:, None] * da
            gap = p[:, 2] - self.height(p[:, 0], p[:, 1])
            hit = gap < eps
            out[active[hit]] = ta[hit]
            t[active] = ta + np.maximum(gap, 0) / rate[active]
            keep = ~hit & (t[active] < np.minimum(t_bot, tmax)[active])
            active = active[keep]
        return out

    def surface(self, p):
        gx, gy = self.gradient(p[:, 0], p[:, 1])
        n = np.stack([-gx, -gy, np.ones_like(gx)], -1)
        return n / np.linalg.norm(n, axis=-1, keepdims=True), p[:, :2].copy()


@dataclass
class Scene:
    """Primitives with one material each, lighting, sky, and layout hints (`info`)."""
    primitives: list
    materials: list
    sun: tuple = (0.45, -0.35, 0.82)  # direction towards the sun (normalized on use)
    sun_strength: float = 0.75
    ambient: float = 0.38
    sky: tuple = ((0.80, 0.86, 0.93), (0.42, 0.60, 0.85))  # horizon, zenith
    info: dict = field(default_factory=dict)

    def add(self, primitive, material):
        self.primitives.append(primitive)
        self.materials.append(material)
        return self


def cast_rays(scene, o, d, tmin=1e-6, any_hit=False):
    """Nearest hit of each ray: (t N float64, np.inf on a miss; primitive index N, -1 on a miss).

    `o`, `d`: N x 3 or 1 x 3 (shared); `d` unit length. With `any_hit` (shadow rays),
    primitives that do not cast shadows are skipped and blocked rays are not tested further.
    """
    o, d = np.atleast_2d(np.asarray(o, np.float64)), np.atleast_2d(np.asarray(d, np.float64))
    n = max(len(o), len(d))
    best, ids = np.full(n, np.inf), np.full(n, -1)
    if n == 0 or len(o) == 0 or len(d) == 0:
        return best[:0], ids[:0]
    hits = _Hits(scene, o, d, tmin, any_hit, best, ids)
    hits.visit(_bvh(scene), np.arange(n))
    for i, prim in enumerate(scene.primitives):  # unbounded ones last: they use `best` as tmax
        if prim.radius is None and hits.wanted(prim):
            todo = np.flatnonzero(np.isinf(best)) if any_hit else np.arange(n)
            hits.update(todo, prim.intersect(_rows(o, todo), _rows(d, todo), tmin,
                                             tmax=best[todo]), i)
    return best, ids


class _Hits:
    """Nearest-hit search state while walking the bounding-sphere hierarchy."""

    def __init__(self, scene, o, d, tmin, any_hit, best, ids):
        self.scene, self.o, self.d, self.tmin, self.any_hit = scene, o, d, tmin, any_hit
        self.best, self.ids = best, ids
        self.bounds = _BoundTest(o, d)

    def wanted(self, prim):
        return not self.any_hit or getattr(prim, "casts_shadow", True)

    def visit(self, node, rays):
        centre, radius, payload = node
        if self.any_hit:
            rays = rays[np.isinf(self.best[rays])]
        if rays.size:
            rays = rays[self.bounds.candidates(centre, radius, self.best, self.tmin, rays)]
        if rays.size == 0:
            return
        if isinstance(payload, int):
            prim = self.scene.primitives[payload]
            if self.wanted(prim):
                t = prim.intersect(_rows(self.o, rays), _rows(self.d, rays), self.tmin)
                self.update(rays, t, payload)
            return
        for child in payload:
            self.visit(child, rays)

    def update(self, todo, t, i):
        closer = t < self.best[todo]
        self.best[todo[closer]] = t[closer]
        self.ids[todo[closer]] = i


def _bvh(scene):
    """Bounding-sphere hierarchy over the bounded primitives, cached on the scene:
    nodes are (centre, radius, primitive index | [children]), split at the median of
    the widest axis, so a ray only visits primitives near its path."""
    key = tuple(id(p) for p in scene.primitives)
    if scene.info.get("_bvh_key") != key:
        bounded = [i for i, p in enumerate(scene.primitives) if p.radius is not None]
        scene.info["_bvh"] = _build(scene.primitives, bounded)
        scene.info["_bvh_key"] = key
    return scene.info["_bvh"]


def _build(prims, members):
    if len(members) == 1:
        return prims[members[0]].centre, prims[members[0]].radius, int(members[0])
    cs = np.array([prims[i].centre for i in members]).reshape(-1, 3)
    rs = np.array([prims[i].radius for i in members])
    if len(members) == 0:
        return np.zeros(3), 0.0, []
    lo, hi = (cs - rs[:, None]).min(0), (cs + rs[:, None]).max(0)
    centre = (lo + hi) / 2
    radius = float((np.linalg.norm(cs - centre, axis=1) + rs).max())
    order = np.argsort(cs[:, np.argmax(hi - lo)], kind="stable")
    half = len(members) // 2
    kids = [_build(prims, [members[k] for k in order[:half]]),
            _build(prims, [members[k] for k in order[half:]])]
    return centre, radius, kids


def _dot(a, b):
    """Row-wise dot product of N x 3 arrays (einsum avoids a slow length-3 reduction)."""
    return np.einsum("ij,ij->i", a, b)


class _BoundTest:
    """Which rays pass a bounding sphere before their current best hit.

    Cheap forms for a shared origin (camera rays) and a shared direction (shadow rays,
    tested in 2D on the plane perpendicular to the sun), since it runs per primitive.
    """

    def __init__(self, o, d):
        self.o, self.d = o, d
        if d.shape[0] == 1 and o.shape[0] > 1:
            basis = np.linalg.svd(d)[2][1:]  # two unit vectors perpendicular to d
            self.plane = basis @ o.T  # 2 x N
            self.basis, self.along = basis, o @ d[0]

    def candidates(self, c, r, best, tmin, rays):
        """Boolean mask over the ray indices `rays`."""
        if len(rays) == max(len(self.o), len(self.d)):
            rays = slice(None)  # all rays: plain views instead of gathering copies
        if self.o.shape[0] == 1:
            w = c - self.o[0]
            s = self.d[rays] @ w if self.d.shape[0] > 1 else self.d[0] @ w
            dist2 = w @ w - s * s
        elif self.d.shape[0] == 1:
            s = c @ self.d[0] - self.along[rays]
            cp = self.basis @ c
            dist2 = (self.plane[0, rays] - cp[0]) ** 2 + (self.plane[1, rays] - cp[1]) ** 2
        else:
            w = c - self.o[rays]
            s = _dot(w, self.d[rays])
            dist2 = _dot(w, w) - s * s
        return np.broadcast_to((dist2 <= r * r) & (s + r > tmin), best[rays].shape) & (s - r < best[rays])


def pixel_rays(K, cam_from_world, height, width, offsets=(0.0, 0.0)):
    """World ray origin (1 x 3), unit directions (H*W x 3) and z per unit length (H*W).

    Pixel centres follow `recon_match.coords`: pixel (x, y) looks along K^-1 [x, y, 1].
    """
    T = np.asarray(cam_from_world, np.float64)
    R, t = T[:3, :3], T[:3, 3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    pix = np.stack([xs.ravel() + offsets[0], ys.ravel() + offsets[1], np.ones(xs.size)], -1)
    rc = pix @ np.linalg.inv(np.asarray(K, np.float64)).T
    norm = np.sqrt(_dot(rc, rc))
    d = (rc / norm[:, None]) @ R  # R^T rc
    o = (-R.T @ t)[None]
    return o, d, 1.0 / norm
