"""Other grey renderings of a query that matches poorly, for cross-modality cameras.

A thermal camera shows temperature as white-hot or black-hot (the polarity reverses every
edge), or through a false-colour palette. In rainbow palettes (jet, turbo, DJI's rainbow
modes) brightness rises and falls along the scale while the hue runs monotonically from blue
(cold) to red (hot): the hue, not the luminance, carries the structure the references show.
"""

import cv2
import numpy as np

from ..imageio import to_gray

# median saturation (of pixels not near black) above which an image is taken for a
# false-colour rendering: rainbow palettes measure 0.77-1.0 on the styled queries of
# `bench.localization`, photographs 0.1-0.3 (real scenes) and 0.41-0.62 (the rendered aerial
# scene's lawns); a wrong guess costs time, not accuracy
PALETTE_SATURATION = 0.65


def hue_gray(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> grey (3 equal channels) of the hue along a rainbow palette:
    blue (cold) -> 0, red (hot) -> 255. Magenta, past blue or red, is read as red."""
    h = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 0].astype(np.float32)  # 0..180, blue 120
    h = np.where(h > 150, h - 180, h)
    g = np.clip(255 * (1 - h / 120), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, -1)


def is_false_colour(image: np.ndarray) -> bool:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    lit = hsv[..., 2] > 50
    return bool(lit.any() and np.median(hsv[..., 1][lit]) > 255 * PALETTE_SATURATION)


def alternative_renderings(image: np.ndarray) -> dict[str, np.ndarray]:
    """{name: H x W x 3 uint8} to try, in order: the inverted grey image, and for a
    false-colour image its hue read along a rainbow palette, both polarities."""
    out = {"inverted": to_gray(255 - image)}
    if is_false_colour(image):
        hue = hue_gray(image)
        out.update(hue=hue, hue_inverted=255 - hue)
    return out
