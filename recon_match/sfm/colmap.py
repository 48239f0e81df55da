"""COLMAP database set-up: cameras with focal priors, images, and the camera-sharing mode."""

import logging
from pathlib import Path

import pycolmap

from ..fileio import safe_name

logger = logging.getLogger(__name__)

CAMERA_MODES = ("auto", "single", "per-image")
DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP's guess without EXIF: focal = 1.2 * max(W, H)


def _num_params(model: str) -> int:
    probe = pycolmap.Camera.create_from_model_name(0, model, 1.0, 100, 100)
    return len(probe.params)


def parse_camera(spec: str, width: int, height: int) -> pycolmap.Camera:
    """`"MODEL,p1,p2,..."` (e.g. `"PINHOLE,500,500,320,240"`) -> camera of size `width` x `height`.

    Raises ValueError naming the problem: unknown model, wrong number of parameters,
    non-numeric or non-finite values, non-positive focal lengths.
    """
    parts = [p.strip() for p in str(spec).split(",")]
    model = parts[0].upper()
    known = [m for m in pycolmap.CameraModelId.__members__ if m != "INVALID"]
    if model not in known:
        raise ValueError(f"camera {spec!r}: unknown model {parts[0]!r} (known: {', '.join(known)})")
    try:
        params = [float(p) for p in parts[1:]]
    except ValueError:
        raise ValueError(f"camera {spec!r}: parameters must be numbers") from None
    expected = _num_params(model)
    if len(params) != expected:
        cam = pycolmap.Camera.create_from_model_name(0, model, 1.0, 100, 100)
        raise ValueError(f"camera {spec!r}: {model} takes {expected} parameters "
                         f"({cam.params_info}), got {len(params)}")
    if not all(p == p and abs(p) != float("inf") for p in params):
        raise ValueError(f"camera {spec!r}: parameters must be finite")
    camera = pycolmap.Camera(model=model, width=width, height=height, params=params)
    if any(camera.params[i] <= 0 for i in camera.focal_length_idxs()):
        raise ValueError(f"camera {spec!r}: focal length must be positive")
    return camera


def camera_spec(camera: pycolmap.Camera) -> str:
    """The `"MODEL,p1,p2,..."` string `parse_camera` reads back into `camera`'s intrinsics."""
    return ",".join([camera.model.name] + [repr(float(p)) for p in camera.params])


def infer_camera(path, camera_model="SIMPLE_RADIAL", size=None, spec=None) -> pycolmap.Camera:
    """Initial camera for one image: `spec` ("MODEL,params": known intrinsics, e.g. a
    calibrated rig), else focal prior from EXIF when present, else 1.2 * max(W, H).

    `size`: (W, H) the keypoints refer to, when it differs from the file's stored size
    (images decoded with their EXIF orientation applied are transposed); the focal prior is
    kept and the principal point re-centred.
    """
    opts = pycolmap.ImageReaderOptions(camera_model=camera_model,
                                       default_focal_length_factor=DEFAULT_FOCAL_FACTOR)
    try:
        cam = pycolmap.infer_camera_from_image(Path(path), opts)
    except Exception as e:  # pycolmap raises ValueError with a C++ message
        raise ValueError(f"{path}: cannot read image for camera set-up ({e})") from e
    if spec:
        w, h = size if size is not None else (cam.width, cam.height)
        cam = parse_camera(spec, int(w), int(h))
        cam.has_prior_focal_length = True  # COLMAP trusts it instead of re-estimating from scratch
        return cam
    if size is not None and (cam.width, cam.height) != tuple(int(s) for s in size):
        prior = cam.has_prior_focal_length
        cam = pycolmap.Camera.create_from_model_name(0, camera_model, cam.mean_focal_length(),
                                                     int(size[0]), int(size[1]))
        cam.has_prior_focal_length = prior
    return cam


def _same_camera(a: pycolmap.Camera, b: pycolmap.Camera) -> bool:
    return (a.model, a.width, a.height) == (b.model, b.width, b.height) and \
        list(a.params) == list(b.params)


def resolve_camera_mode(cameras: list, mode: str) -> str:
    """'auto' -> 'single' when every image has the same size and EXIF prior, else 'per-image'."""
    if mode not in CAMERA_MODES:
        raise ValueError(f"unknown camera mode {mode!r}; choose from {CAMERA_MODES}")
    shared = all(_same_camera(c, cameras[0]) for c in cameras)
    if mode == "single" and not shared:
        sizes = sorted({(c.width, c.height) for c in cameras})
        raise ValueError(f"camera mode 'single' needs identical images, found sizes {sizes} or "
                         "different EXIF focal lengths; use camera mode 'per-image' or 'auto'")
    if mode == "auto":
        return "single" if shared else "per-image"
    return mode


def create_database(db_path, image_dir, names, camera_mode="auto",
                    camera_model="SIMPLE_RADIAL", sizes=None, camera_spec=None) -> dict:
    """Create a new database at `db_path` with one camera per image or one shared camera.

    `sizes`: optional {name: (W, H)} the keypoints refer to (features.h5 `image_size`).
    `camera_spec`: "MODEL,params" known intrinsics of every image (see `infer_camera`).
    Returns {image name: image id}.
    """
    db_path = Path(db_path)
    if db_path.exists():
        raise FileExistsError(f"{db_path}: database already exists")
    sizes = sizes or {}
    cameras = [infer_camera(Path(image_dir) / safe_name(n, "image name"), camera_model,
                            sizes.get(n), camera_spec) for n in names]
    mode = resolve_camera_mode(cameras, camera_mode)
    source = "given" if camera_spec else "EXIF" if cameras[0].has_prior_focal_length else "guess"
    logger.info("database %s: %d images, camera mode %s, model %s, focal prior %.1f px (%s)",
                db_path, len(names), mode, cameras[0].model.name, cameras[0].mean_focal_length(), source)
    ids = {}
    with pycolmap.Database.open(db_path) as db:
        camera_id = db.write_camera(cameras[0]) if mode == "single" else None
        for name, cam in zip(names, cameras):
            cid = camera_id if mode == "single" else db.write_camera(cam)
            ids[name] = db.write_image(pycolmap.Image(name=name, camera_id=cid))
    return ids


def image_ids(db_path) -> dict:
    """{image name: image id} of an existing database."""
    with pycolmap.Database.open(Path(db_path)) as db:
        return {im.name: im.image_id for im in db.read_all_images()}
