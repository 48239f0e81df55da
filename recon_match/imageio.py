"""Reading images robustly: one function every stage uses, with errors that name the file.

Accepted: anything Pillow decodes (JPEG, PNG, TIFF, ...), grayscale, RGBA, 16-bit, CMYK and
palette images (converted to 8-bit RGB), with EXIF orientation applied.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm"}
MIN_SIDE = 32
logger = logging.getLogger(__name__)

MAX_PIXELS = 120_000_000  # larger than any camera we expect; above it decoding is refused


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


def _to_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = max(a.max(), 1.0)
        a = np.clip(a / hi * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, -1)
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo, hi = a.min(), a.max()
        a = ((a - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, -1)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def to_gray(img: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> the same with three equal luminance channels."""
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def read_image(path, grayscale: bool = False) -> np.ndarray:
    """Load `path` as H x W x 3 uint8 RGB (or H x W if `grayscale`), EXIF orientation applied.

    Raises ImageError naming the file when it is missing, not an image, truncated,
    smaller than 32 px on a side or absurdly large.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(f"{path}: {img.width}x{img.height} is too large "
                                 f"(> {MAX_PIXELS} pixels)")
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img)
    except ImageError:
        raise
    except Exception as e:  # Pillow raises many types for bad files
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} is smaller than "
                         f"{MIN_SIDE} px on a side")
    if grayscale:
        return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    return rgb


def list_images(image_dir) -> list[str]:
    """Relative POSIX names of all images below `image_dir`, sorted; errors name the folder."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: image folder does not exist")
    names = sorted(p.relative_to(image_dir).as_posix() for p in image_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not names:
        raise FileNotFoundError(f"{image_dir}: no images found "
                                f"(extensions {sorted(IMAGE_EXTENSIONS)})")
    return names


def _problem(path):
    try:
        read_image(path)
    except ImageError as e:
        return str(e)
    return None


def readable_images(image_dir, names, num_threads: int = 2) -> list[str]:
    """The `names` that `read_image` can decode, in order; the others are skipped with one
    warning each naming the file and the problem (one bad photo must not stop a long run).

    Decodes every image once (Pillow releases the GIL, so threads overlap); raises
    FileNotFoundError when none is readable.
    """
    image_dir = Path(image_dir)
    with ThreadPoolExecutor(max(1, num_threads)) as pool:
        problems = list(pool.map(_problem, (image_dir / n for n in names)))
    for problem in filter(None, problems):
        logger.warning("skipping %s", problem)
    ok = [n for n, problem in zip(names, problems) if problem is None]
    if not ok:
        raise FileNotFoundError(f"{image_dir}: none of the {len(names)} images is readable")
    return ok
