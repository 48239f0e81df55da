"""Cross-modality appearance styles (MatchAnything) and photometric augmentation.

A style re-renders image1 of a pair as another sensor or medium would show the same scene,
pixel-aligned, so the geometric ground truth is untouched. Families:

- `thermal`: luminance remapped (optionally inverted), heat-diffusion blur, low resolution, colormap.
- `night`: dark, gamma-crushed, sensor noise, sodium/LED colour cast, glare blobs.
- `depth`: the pair's (inverse) depth of view 1 shown as an image (only when the generator has depth).
- `edge`: sketch-like line drawing from gradients.
- `sar`: SAR-like: multiplicative speckle applied in intensity, shown in the log domain.
- `map`: flat-colour map-like regions with dark borders.

Two families are held out of training by default (`DEFAULT_HELD_OUT`: thermal and SAR, the two
modalities MatchAnything evaluates zero-shot and the furthest from RGB photographs), so the
validation set can measure zero-shot cross-modality matching.
"""

import cv2
import numpy as np

from ..imageio import to_gray

STYLES = ("thermal", "night", "depth", "edge", "sar", "map")
DEFAULT_HELD_OUT = ("thermal", "sar")
COLORMAPS = (cv2.COLORMAP_INFERNO, cv2.COLORMAP_JET, cv2.COLORMAP_HOT, cv2.COLORMAP_BONE,
             cv2.COLORMAP_MAGMA, cv2.COLORMAP_TURBO, cv2.COLORMAP_PLASMA)


def _gray(img):
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255


def _to_rgb8(x):
    x = np.clip(x * 255, 0, 255).astype(np.uint8)
    return np.repeat(x[..., None], 3, -1) if x.ndim == 2 else x


def _colormap(rng, x, gray_prob=0.4):
    """x in [0, 1] (H x W) -> RGB uint8 through a random colormap or grey."""
    if rng.random() < gray_prob:
        return _to_rgb8(x)
    u8 = np.clip(x * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, COLORMAPS[int(rng.integers(len(COLORMAPS)))]),
                        cv2.COLOR_BGR2RGB)


def _low_res(rng, x, max_factor=4.0):
    h, w = x.shape[:2]
    f = rng.uniform(1.0, max_factor)
    small = cv2.resize(x, (max(8, int(w / f)), max(8, int(h / f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _normalize(x, lo_q=1, hi_q=99):
    lo, hi = np.percentile(x, [lo_q, hi_q])
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1)


def thermal(rng, img, aux):
    g = _gray(img)
    # emitted heat is not reflected light: a smooth "temperature" field dominates the fine texture
    sigma = rng.uniform(2, 8)
    heat = cv2.GaussianBlur(g, (0, 0), sigma)
    x = rng.uniform(0.3, 0.8) * heat + rng.uniform(0.2, 0.7) * g
    if rng.random() < 0.5:
        x = 1 - x
    x = _normalize(np.power(np.clip(x, 1e-4, 1), rng.uniform(0.6, 1.6)))
    x = _low_res(rng, cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5)))
    x = x + rng.normal(0, rng.uniform(0.005, 0.03), x.shape).astype(np.float32)
    return _colormap(rng, np.clip(x, 0, 1))


def night(rng, img, aux):
    x = img.astype(np.float32) / 255
    x = np.power(x, rng.uniform(1.5, 3.0)) * rng.uniform(0.15, 0.5)
    cast = np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7)], np.float32)
    x *= cast if rng.random() < 0.6 else cast[::-1]  # sodium orange or cold LED blue
    h, w = x.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):  # lamps and headlights: glare blobs
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.02, 0.12) * max(h, w)
        x += (np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r)) * rng.uniform(0.3, 1.2))[..., None]
    # shot noise grows with signal, read noise does not
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(x * 0.01 + rng.uniform(1e-4, 2e-3))
    return _to_rgb8(np.clip(x, 0, 1))


def depth_image(rng, img, aux):
    d = aux["depth1"]
    ok = np.isfinite(d) & (d > 0)
    inv = np.where(ok, 1 / np.where(ok, d, 1), 0).astype(np.float32)
    x = _normalize(inv) if ok.any() else inv
    x = np.where(ok, x, 0 if rng.random() < 0.5 else 1).astype(np.float32)
    return _colormap(rng, x, gray_prob=0.5)


def edge(rng, img, aux):
    g = cv2.GaussianBlur(_gray(img), (0, 0), rng.uniform(0.7, 2.0))
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    mag = _normalize(np.sqrt(gx * gx + gy * gy), 0, 98)
    mag = np.clip(mag * rng.uniform(1.0, 2.0), 0, 1)
    if rng.random() < 0.5:
        mag = cv2.dilate(mag, np.ones((2, 2), np.uint8))
    return _to_rgb8(1 - mag if rng.random() < 0.7 else mag)  # dark pencil lines on paper


def sar(rng, img, aux):
    g = _gray(img)
    intensity = cv2.GaussianBlur(g, (0, 0), rng.uniform(0.5, 1.5)) ** 2 + 1e-3
    looks = int(rng.integers(1, 5))
    # fully developed speckle: gamma-distributed multiplicative noise with mean 1
    speckle = rng.gamma(looks, 1.0 / looks, size=g.shape).astype(np.float32)
    x = _normalize(np.log(intensity * speckle))
    return _to_rgb8(x)


def map_like(rng, img, aux):
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    small = cv2.medianBlur(small, 5)
    levels = int(rng.integers(3, 7))
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    label = np.minimum((_normalize(g.astype(np.float32)) * levels).astype(np.int32), levels - 1)
    palette = rng.integers(60, 256, size=(levels, 3)).astype(np.uint8)
    flat = cv2.resize(palette[label], (w, h), interpolation=cv2.INTER_NEAREST)
    lab_up = cv2.resize(label.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    border = cv2.morphologyEx(lab_up, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    flat[border] = (flat[border] * 0.4).astype(np.uint8)
    return flat


STYLE_FUNCS = {"thermal": thermal, "night": night, "depth": depth_image, "edge": edge,
               "sar": sar, "map": map_like}


def allowed_styles(held_out, include_held_out):
    """Style families a split may use: training excludes the held-out ones."""
    unknown = set(held_out) - set(STYLES)
    if unknown:
        raise ValueError(f"unknown held-out styles {sorted(unknown)}; known: {STYLES}")
    return tuple(s for s in STYLES if include_held_out or s not in held_out)


def apply_style(rng, img, families, aux):
    """Apply one random family from `families` to `img` (H x W x 3 uint8) -> (img, name).

    `aux` may hold `depth1` (H x W float, z-depth of view 1); without it `depth` is skipped.
    """
    usable = [s for s in families if s != "depth" or aux.get("depth1") is not None]
    if not usable:
        return img, "none"
    name = usable[int(rng.integers(len(usable)))]
    return STYLE_FUNCS[name](rng, img, aux), name


def photometric(rng, img):
    """Mild camera-like photometric changes (gamma, contrast, brightness, white balance,
    saturation, blur, noise) on an H x W x 3 uint8 image; geometry untouched.

    The tone changes are folded into one per-channel lookup table (cv2.LUT), which is
    ~20x faster than doing the same arithmetic on float images."""
    v = np.linspace(0, 1, 256, dtype=np.float32)
    v = (np.power(v, rng.uniform(0.7, 1.4)) - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
    lut = v[:, None] * rng.uniform(0.9, 1.1, size=3).astype(np.float32)  # white balance
    x = cv2.LUT(img, np.clip(lut * 255, 0, 255).astype(np.uint8)[None])
    gray = to_gray(x)
    s = rng.uniform(0.5, 1.4)
    x = cv2.addWeighted(x, s, gray, 1 - s, 0)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:
        noise = rng.standard_normal(x.shape[:2], dtype=np.float32) * rng.uniform(0.8, 5.0)
        # grey noise as 3 merged planes: numpy broadcasting over a trailing axis of 3 is slow
        y = cv2.merge([noise, noise, noise])
        y += x
        x = np.clip(y, 0, 255, out=y).astype(np.uint8)
    return x
