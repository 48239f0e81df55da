"""Procedural, photo-like surface textures and their filtered lookup.

Every generator takes a numpy `Generator` and a power-of-two `size` and returns a
size x size x 3 float32 RGB image in [0, 1] that tiles seamlessly (spectral noise is
periodic; bricks and tiles use periods that divide `size`). `Texture` wraps such an image
in a mip pyramid and samples it trilinearly by texel coordinates, so distant or grazing
surfaces are filtered the way a camera integrates them rather than aliasing.
"""

import cv2
import numpy as np


def spectral_noise(rng, size, beta=2.0, channels=1):
    """Periodic 1/f^beta noise, channels x size x size float32, zero mean, unit std.

    beta ~ 2 gives natural-image statistics (cloudy, multi-scale); beta ~ 1 is grainier.
    """
    white = rng.standard_normal((channels, size, size))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    spec = np.fft.rfft2(white) * f ** (-beta / 2)
    spec[:, 0, 0] = 0.0
    out = np.fft.irfft2(spec, s=(size, size))
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-12
    return out.astype(np.float32)


def _mix(c0, c1, t):
    """Blend two RGB colours by t (H x W) -> H x W x 3."""
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None]


def _jitter(rng, colour, amount):
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 1)


def _finish(img):
    return np.clip(img, 0, 1).astype(np.float32)


def cloudy(rng, size, c0, c1, beta=2.0, contrast=0.22, grain=0.04):
    """Two-colour multi-octave noise with a fine grain: soil, stone, plaster, grass bases."""
    n = spectral_noise(rng, size, beta, 2)
    t = np.clip(0.5 + contrast * n[0], 0, 1)
    return _finish(_mix(c0, c1, t) * (1 + grain * n[1][..., None]))


def dead_leaves(rng, size, palette, count=3000, rmin=2.0, rmax=60.0, background=None):
    """Occluding discs with power-law radii (scale-invariant, like natural images)."""
    img = np.zeros((size, size, 3), np.float32)
    img[:] = palette[0] if background is None else background
    radii = rmin / (1 - rng.uniform(0, 1 - (rmin / rmax), count))  # p(r) ~ r^-2
    centres = rng.uniform(0, size, (count, 2))
    cols = np.asarray(palette, np.float32)[rng.integers(0, len(palette), count)]
    cols = np.clip(cols * rng.uniform(0.8, 1.2, (count, 1)), 0, 1)
    for (x, y), r, c in zip(centres, np.minimum(radii, rmax), cols):
        for dx in (-size, 0, size):  # draw wrapped copies so the texture tiles
            for dy in (-size, 0, size):
                if -r < x + dx < size + r and -r < y + dy < size + r:
                    cv2.circle(img, (int(x + dx), int(y + dy)), int(r), c.tolist(), -1, cv2.LINE_AA)
    n = spectral_noise(rng, size, 1.5)[0]
    return _finish(img * (1 + 0.06 * n[..., None]))


def masonry(rng, size, rows, cols, colour, mortar_colour, mortar=0.06, jitter=0.08,
            offset=0.5, noise=0.25):
    """Bricks or ashlar blocks: `rows` x `cols` per tile, staggered rows, per-block colour."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = np.floor(yy * rows).astype(int)
    shifted = xx * cols + offset * (r % 2)
    c = np.floor(shifted).astype(int) % cols
    block_cols = np.clip(np.asarray(colour, np.float32)
                         * rng.uniform(1 - jitter * 2, 1 + jitter * 2, (rows, cols, 1))
                         + rng.uniform(-jitter, jitter, (rows, cols, 3)) * 0.3, 0, 1)
    img = block_cols[r, c]
    fy, fx = yy * rows - r, shifted - np.floor(shifted)
    edge = np.minimum(np.minimum(fy, 1 - fy) * (size / rows), np.minimum(fx, 1 - fx) * (size / cols))
    m = np.clip(1.0 - (edge - mortar * size / rows) / 1.5, 0, 1)  # anti-aliased joint mask
    n = spectral_noise(rng, size, 1.6, 2)
    img = img * (1 + noise * 0.4 * n[0][..., None])
    mort = np.asarray(mortar_colour, np.float32) * (1 + 0.1 * n[1][..., None])
    return _finish(img * (1 - m[..., None]) + mort * m[..., None])


def stripes(rng, size, c0, c1, period, wobble=0.3, beta=1.8):
    """Wavy stripes along v (wood grain, ploughed fields, corrugated roofs)."""
    xx = np.mgrid[0:size, 0:size][1].astype(np.float32)
    n = spectral_noise(rng, size, beta, 2)
    k = max(1, round(size / period))  # integer frequency keeps it periodic
    t = 0.5 + 0.5 * np.sin(2 * np.pi * k * xx / size + wobble * 3 * n[0])
    return _finish(_mix(c0, c1, t) * (1 + 0.08 * n[1][..., None]))


def marble(rng, size, c0, c1):
    n = spectral_noise(rng, size, 2.2, 2)
    xx = np.mgrid[0:size, 0:size][1].astype(np.float32)
    t = np.abs(np.sin(2 * np.pi * 3 * xx / size + 2.5 * n[0])) ** 0.4
    return _finish(_mix(c1, c0, t) * (1 + 0.04 * n[1][..., None]))


def detail_map(rng, size, strength=0.25, beta=1.2):
    """Grayscale multiplicative detail (mean 1), size x size x 3, for fine-scale texture."""
    n = spectral_noise(rng, size, beta)[0]
    return np.repeat((1 + strength * np.clip(n, -3, 3) / 3)[..., None], 3, -1).astype(np.float32)


PROCEDURAL = {
    "brick": lambda rng, s: masonry(rng, s, 16, 4, _jitter(rng, (0.62, 0.30, 0.22), 0.06),
                                    (0.72, 0.70, 0.66), mortar=0.09),
    "stone": lambda rng, s: masonry(rng, s, 6, 3, _jitter(rng, (0.70, 0.64, 0.52), 0.05),
                                    (0.45, 0.43, 0.40), mortar=0.03, jitter=0.06, noise=0.6),
    "paving": lambda rng, s: masonry(rng, s, 8, 8, _jitter(rng, (0.55, 0.54, 0.52), 0.05),
                                     (0.30, 0.30, 0.28), mortar=0.04, offset=0.0, noise=0.5),
    "plaster": lambda rng, s: cloudy(rng, s, _jitter(rng, (0.86, 0.83, 0.76), 0.04),
                                     (0.80, 0.77, 0.70), contrast=0.08, grain=0.01),
    "paint": lambda rng, s: cloudy(rng, s, _jitter(rng, (0.35, 0.45, 0.55), 0.15),
                                   (0.33, 0.42, 0.52), contrast=0.05, grain=0.005),
    "grass": lambda rng, s: cloudy(rng, s, (0.22, 0.36, 0.12), (0.45, 0.55, 0.22),
                                   beta=1.4, contrast=0.3, grain=0.15),
    "soil": lambda rng, s: dead_leaves(rng, s, [(0.45, 0.36, 0.26), (0.55, 0.46, 0.34),
                                                (0.38, 0.30, 0.22), (0.62, 0.58, 0.52)],
                                       count=4000, rmin=1.0, rmax=12.0),
    "asphalt": lambda rng, s: cloudy(rng, s, (0.22, 0.22, 0.23), (0.36, 0.36, 0.36),
                                     beta=0.8, contrast=0.25, grain=0.1),
    "wood": lambda rng, s: stripes(rng, s, (0.55, 0.38, 0.22), (0.40, 0.26, 0.14), s / 24),
    "marble": lambda rng, s: marble(rng, s, (0.92, 0.90, 0.87), (0.55, 0.55, 0.58)),
    "foliage": lambda rng, s: dead_leaves(rng, s, [(0.16, 0.32, 0.10), (0.25, 0.42, 0.14),
                                                   (0.10, 0.22, 0.08), (0.35, 0.45, 0.18)],
                                          count=5000, rmin=2.0, rmax=18.0),
    "leaves": lambda rng, s: dead_leaves(rng, s, [tuple(rng.uniform(0.15, 0.75) * rng.uniform(0.7, 1.0, 3))
                                                        for _ in range(12)],
                                         count=2500, rmin=2.0, rmax=80.0),
    "roof": lambda rng, s: masonry(rng, s, 32, 16, _jitter(rng, (0.50, 0.25, 0.20), 0.1),
                                   (0.25, 0.15, 0.12), mortar=0.1, jitter=0.05),
    "metal": lambda rng, s: stripes(rng, s, _jitter(rng, (0.60, 0.62, 0.64), 0.08),
                                    (0.48, 0.50, 0.52), s / 32, wobble=0.02),
}


def procedural(name, rng, size=512):
    """One of `PROCEDURAL`'s textures, size x size x 3 float32."""
    if name not in PROCEDURAL:
        raise ValueError(f"unknown texture {name!r}; choose from {sorted(PROCEDURAL)}")
    return PROCEDURAL[name](rng, size)


class Texture:
    """A tiling RGB image with a mip pyramid, sampled trilinearly with wrap-around.

    `image`: H x W x 3, uint8 (0..255) or float in [0, 1]; it is resized to a power of two.
    """

    def __init__(self, image, max_size=2048):
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"texture must be H x W x 3, got shape {img.shape}")
        img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        h, w = img.shape[:2]
        th = min(max_size, 1 << int(np.floor(np.log2(max(h, 2)))))
        tw = min(max_size, 1 << int(np.floor(np.log2(max(w, 2)))))
        if (th, tw) != (h, w):
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        self.levels = [np.ascontiguousarray(img)]
        while min(self.levels[-1].shape[:2]) > 1:
            a = self.levels[-1]
            self.levels.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
        self.size = img.shape[1], img.shape[0]

    def sample(self, u, v, lod):
        """Colours N x 3 at texel coordinates (u, v) of level 0 (N each), level of detail N."""
        lod = np.clip(lod, 0, len(self.levels) - 1)
        lo = np.floor(lod).astype(int)
        frac = (lod - lo).astype(np.float32)[:, None]
        out = np.empty((len(u), 3), np.float32)
        for level in np.unique(lo):
            m = lo == level
            c0 = self._bilinear(level, u[m], v[m])
            if level + 1 < len(self.levels):
                c0 += (self._bilinear(level + 1, u[m], v[m]) - c0) * frac[m]
            out[m] = c0
        return out

    def _bilinear(self, level, u, v):
        img = self.levels[level]
        h, w = img.shape[:2]
        s = 0.5 ** level
        x = u * s - 0.5  # texel centres sit at half-integers
        y = v * s - 0.5
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0).astype(np.float32)[:, None], (y - y0).astype(np.float32)[:, None]
        x0, y0 = x0.astype(np.int64) % w, y0.astype(np.int64) % h
        x1, y1 = (x0 + 1) % w, (y0 + 1) % h
        top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
        bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
        return top * (1 - fy) + bot * fy
