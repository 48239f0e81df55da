"""Pictures of matches: a pair side by side with match lines, dense warps and certainty maps.

All functions take numpy arrays or torch tensors and return H x W x 3 uint8 RGB pictures
(write them with `recon_match.viz.png.save_png`). Keypoints and warps are pixel coordinates
with (0, 0) at the centre of the top-left pixel (`recon_match.coords`). Lines are drawn with
Pillow without anti-aliasing, so each match keeps its exact colour.
"""

import cv2
import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

default_conf = {
    "max_lines": 400,  # more lines hide each other; a deterministic even subset is drawn
    "max_error": 5.0,  # pixels: errors at or above it get the "wrong" colour
    "line_width": 1,
    "dot_radius": 2,  # pixels; 0 draws no end points
    "dim": 0.75,  # the photos are darkened so that the lines stand out
    "gap": 8,  # pixels between the two images
}


def _np(x) -> np.ndarray:
    """numpy view of a numpy array or a (possibly CUDA, grad-tracking) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _merge(conf):
    unknown = set(conf or {}) - set(default_conf)
    if unknown:
        raise ValueError(f"unknown match-picture options {sorted(unknown)}; "
                         f"known: {sorted(default_conf)}")
    return {**default_conf, **(conf or {})}


def _rgb8(image) -> np.ndarray:
    """H x W x 3 uint8 from uint8/float images, H x W x 3, H x W or 3 x H x W (torch layout)."""
    a = _np(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = np.clip(np.nan_to_num(a.astype(np.float32)) * 255 + 0.5, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an image H x W (x 3), got shape {a.shape}")
    return a


def colorize(values, cmap: str = "RdYlGn", vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map values (any shape) to uint8 RGB (shape + (3,)) with a matplotlib colour map."""
    v = np.nan_to_num(_np(values).astype(np.float64), nan=vmin)
    t = np.clip((v - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    return (colormaps[cmap](t)[..., :3] * 255 + 0.5).astype(np.uint8)


def match_colors(certainty=None, errors=None, conf: dict | None = None) -> np.ndarray:
    """N x 3 uint8 colours: by `errors` (pixels; green = 0, red >= max_error) when given, else
    by `certainty` (red = 0, green = 1), else one colour."""
    conf = _merge(conf)
    if errors is not None:
        return colorize(errors, "RdYlGn_r", 0.0, conf["max_error"])
    if certainty is not None:
        return colorize(certainty, "RdYlGn", 0.0, 1.0)
    raise ValueError("match_colors needs certainty or errors")


def _subset(n: int, max_lines: int) -> np.ndarray:
    if max_lines is None or n <= max_lines:
        return np.arange(n)
    return np.linspace(0, n - 1, max_lines).round().astype(int)


def draw_matches(image0, image1, kpts0, kpts1, certainty=None, errors=None, colors=None,
                 text: str | None = None, conf: dict | None = None) -> np.ndarray:
    """The pair side by side with one line per match.

    image0, image1: H x W x 3 (uint8 or float in [0, 1]) or 3 x H x W; kpts0, kpts1: N x 2
    pixel coordinates. Colour: `colors` (N x 3 uint8) if given, else by `errors` (N, pixels,
    e.g. distance to the ground-truth warp), else by `certainty` (N in [0, 1]), else green.
    At most `max_lines` matches are drawn (an even subset); lines of larger error or lower
    certainty are drawn last so that bad matches stay visible. `text` is written top left
    (e.g. the names, the match count and what the colours mean).
    Returns a (max(H0, H1)) x (W0 + gap + W1) x 3 uint8 picture.
    """
    conf = _merge(conf)
    im0, im1 = _rgb8(image0), _rgb8(image1)
    k0, k1 = _np(kpts0).reshape(-1, 2).astype(float), _np(kpts1).reshape(-1, 2).astype(float)
    if len(k0) != len(k1):
        raise ValueError(f"kpts0 and kpts1 differ in length: {len(k0)} vs {len(k1)}")
    if colors is not None:
        rgb, order = _np(colors).reshape(-1, 3).astype(np.uint8), np.arange(len(k0))
    elif errors is not None or certainty is not None:
        rgb = match_colors(certainty, errors, conf)
        key = _np(errors) if errors is not None else -_np(certainty)
        order = np.argsort(key.reshape(-1), kind="stable")
    else:
        rgb, order = np.tile(np.uint8([40, 220, 60]), (len(k0), 1)), np.arange(len(k0))
    keep = order[_subset(len(order), conf["max_lines"])]
    canvas = _side_by_side(im0, im1, conf)
    draw = ImageDraw.Draw(canvas)
    dx, r = im0.shape[1] + conf["gap"], conf["dot_radius"]
    for i in keep:
        (x0, y0), (x1, y1), c = k0[i], k1[i] + (dx, 0), tuple(int(v) for v in rgb[i])
        draw.line([(x0, y0), (x1, y1)], fill=c, width=conf["line_width"])
        if r > 0:
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=c)
            draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=c)
    if text:
        box = draw.multiline_textbbox((4, 4), text)
        draw.rectangle([box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3], fill=(0, 0, 0))
        draw.multiline_text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(canvas)


def _side_by_side(im0: np.ndarray, im1: np.ndarray, conf: dict) -> Image.Image:
    h, gap = max(im0.shape[0], im1.shape[0]), conf["gap"]
    out = np.full((h, im0.shape[1] + gap + im1.shape[1], 3), 255, np.uint8)
    out[:im0.shape[0], :im0.shape[1]] = im0 * conf["dim"]
    out[:im1.shape[0], im0.shape[1] + gap:] = im1 * conf["dim"]
    return Image.fromarray(out)


def warp_image(image1, warp0, certainty0=None, threshold: float = 0.0) -> np.ndarray:
    """Image1 pulled back into image0's frame through `warp0`: where the warp is right it looks
    like image0. warp0: H0 x W0 x 2 pixel coordinates in image1; certainty0: H0 x W0 in [0, 1]
    fades uncertain pixels to grey, and pixels with certainty <= threshold become grey.
    Returns H0 x W0 x 3 uint8."""
    im1 = _rgb8(image1)
    w = np.nan_to_num(_np(warp0).astype(np.float32), nan=-1e4)
    out = cv2.remap(im1, w[..., 0], w[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    if certainty0 is None:
        return out
    c = np.clip(np.nan_to_num(_np(certainty0).astype(np.float32)), 0, 1)
    c = np.where(c > threshold, c, 0.0)[..., None]
    return (out * c + 128 * (1 - c)).astype(np.uint8)


def certainty_image(certainty) -> np.ndarray:
    """H x W certainty in [0, 1] as an H x W x 3 picture (dark = unsure, yellow = sure)."""
    return colorize(certainty, "inferno", 0.0, 1.0)


def dense_panel(image0, image1, warp0, certainty0, conf: dict | None = None) -> np.ndarray:
    """One row: image0 | image1 warped into image0 (faded by certainty) | certainty0 | image1.

    Everything is shown at image0's height; returns a uint8 picture."""
    conf = _merge(conf)
    im0, im1 = _rgb8(image0), _rgb8(image1)
    tiles = [im0, warp_image(im1, warp0, certainty0), certainty_image(certainty0), im1]
    h = im0.shape[0]
    tiles = [t if t.shape[0] == h else
             cv2.resize(t, (round(t.shape[1] * h / t.shape[0]), h), interpolation=cv2.INTER_AREA)
             for t in tiles]
    gap = np.full((h, conf["gap"], 3), 255, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [gap, t]
    return np.concatenate(row, axis=1)
