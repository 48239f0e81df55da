"""Loading ground-truth COLMAP models and checking them against an image folder."""

import logging
import shutil
import tempfile
from pathlib import Path

import pycolmap

logger = logging.getLogger(__name__)

_TEXT = ("cameras.txt", "images.txt")
_BINARY = ("cameras.bin", "images.bin")


def load_model(path) -> pycolmap.Reconstruction:
    """Read a COLMAP model folder (text or binary) into a `pycolmap.Reconstruction`.

    `points3D` may be absent (a pose-only ground truth). Errors name the folder and what is
    missing or broken.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: model folder does not exist")
    if all((path / f).is_file() for f in _BINARY):
        kind = "bin"
    elif all((path / f).is_file() for f in _TEXT):
        kind = "txt"
    else:
        raise FileNotFoundError(f"{path}: not a COLMAP model (needs {' + '.join(_TEXT)} "
                                f"or {' + '.join(_BINARY)})")
    if not (path / f"points3D.{kind}").is_file():
        # pycolmap 4.2.1 requires the file; an empty one makes a valid pose-only model.
        return _read_without_points(path, kind)
    return _read(path, label=path)


def _read(path: Path, label: Path) -> pycolmap.Reconstruction:
    try:
        rec = pycolmap.Reconstruction(path)
    except Exception as e:  # pycolmap raises ValueError/RuntimeError with C++ messages
        raise ValueError(f"{label}: cannot read COLMAP model ({type(e).__name__}: {e})") from e
    if rec.num_images() == 0:
        raise ValueError(f"{label}: COLMAP model has no images")
    return rec


def _read_without_points(path: Path, kind: str) -> pycolmap.Reconstruction:
    with tempfile.TemporaryDirectory() as tmp:
        for f in path.iterdir():
            if f.is_file():
                shutil.copy(f, tmp)
        empty = Path(tmp) / f"points3D.{kind}"
        if kind == "txt":
            empty.write_text("")
        else:
            empty.write_bytes((0).to_bytes(8, "little"))  # uint64 point count
        rec = _read(Path(tmp), label=path)
    return rec


def check_names(gt: pycolmap.Reconstruction, names, gt_path="ground truth") -> None:
    """Raise ValueError if any of `names` (the images being reconstructed) is not in `gt`.

    Ground-truth images that are not being reconstructed are only logged: a GT folder may
    cover queries or other subsets too.
    """
    gt_names = {im.name for im in gt.images.values()}
    missing = [n for n in names if n not in gt_names]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(f"{gt_path}: ground truth does not match the images: {len(missing)} of "
                         f"{len(names)} images are not in it ({shown})")
    extra = len(gt_names) - len(set(names))
    if extra:
        logger.info("%s: %d ground-truth images are not being reconstructed; ignored",
                    gt_path, extra)
