"""Fuzzing the image path and the network's input: random bytes, damaged files, random shapes
and values. The only allowed failure is ImageError/ValueError naming the file; nothing that
is not finite may reach pycolmap."""

import io

import h5py
import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image

from recon_match import matching
from recon_match.h5io import H5Error, write_features
from recon_match.imageio import ImageError, read_image
from recon_match.model import DenseMatcher
from recon_match.preprocess import load_for_network
from recon_match.sfm.import_h5 import import_features

EXTS = (".jpg", ".png", ".tif", ".bmp", ".webp", ".ppm")



def check_read(path):
    """read_image either gives a valid H x W x 3 uint8 image or an ImageError naming `path`."""
    try:
        img = read_image(path)
    except ImageError as e:
        assert str(path) in str(e)
        return None
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert min(img.shape[:2]) >= 32
    return img


def valid_files(rng):
    """A few valid encoded images of random sizes and modes (bytes, extension)."""
    out = []
    for ext, mode in ((".png", "RGB"), (".jpg", "RGB"), (".png", "L"), (".tif", "I;16"),
                      (".png", "RGBA"), (".jpg", "CMYK"), (".bmp", "P")):
        h, w = rng.integers(20, 90, 2)
        img = Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
        img = img.convert(mode) if mode != "I;16" else Image.fromarray(
            (rng.random((h, w)) * 65535).astype(np.uint16))
        buf = io.BytesIO()
        img.save(buf, format={".jpg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".bmp": "BMP"}[ext])
        out.append((buf.getvalue(), ext))
    return out


def test_random_bytes_and_damaged_files(tmp_path):
    rng = np.random.default_rng(0)
    k = 0
    for n in (0, 1, 7, 100, 5000):  # plain random bytes under every extension
        for ext in EXTS:
            path = tmp_path / f"r{k}{ext}"
            path.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            assert check_read(path) is None
            k += 1
    decoded = 0
    for data, ext in valid_files(rng):
        for trial in range(12):  # truncations, bit flips and spliced headers of real files
            b = bytearray(data)
            kind = trial % 3
            if kind == 0:
                b = b[:int(rng.integers(1, len(b)))]
            elif kind == 1:
                for i in rng.integers(0, len(b), int(rng.integers(1, 20))):
                    b[i] ^= 1 << int(rng.integers(8))
            else:
                b = b[:int(rng.integers(8, 64))] + rng.integers(0, 256, 200, np.uint8).tobytes()
            path = tmp_path / f"d{k}{ext}"
            path.write_bytes(bytes(b))
            decoded += check_read(path) is not None
            k += 1
    assert decoded < k  # the damage was real: most files were refused


def test_random_shaped_arrays_as_images(tmp_path):
    rng = np.random.default_rng(1)
    shapes = [(32, 32), (31, 500), (500, 31), (33, 47, 3), (64, 40, 4), (40, 64, 1), (37, 129, 3)]
    for i, shape in enumerate(shapes):
        for dtype in (np.uint8, np.uint16, np.float32, np.int32):
            a = rng.random(shape) * (65535 if dtype == np.uint16 else 255)
            if dtype == np.float32:
                a.flat[::7] = np.nan  # NaN/Inf pixels in float TIFFs
                a.flat[::11] = np.inf
            a = a.astype(dtype)
            if a.ndim == 3 and a.shape[2] == 1:
                a = a[..., 0]
            try:
                img = Image.fromarray(a if a.ndim == 2 else a.astype(np.uint8))
            except (TypeError, ValueError):
                continue  # not representable as a PIL image
            path = tmp_path / f"a{i}_{np.dtype(dtype).name}.tif"
            img.save(path)
            got = check_read(path)
            if got is not None:
                assert got.shape[:2] == a.shape[:2]
                net = load_for_network(path, 96)
                assert torch.isfinite(net["image"]).all()
                assert 0 <= float(net["image"].min()) and float(net["image"].max()) <= 1


def test_network_on_random_shapes_and_degenerate_content():
    torch.manual_seed(0)
    model = DenseMatcher().eval()
    rng = np.random.default_rng(2)
    cases = [torch.rand(1, 3, *rng.integers(32, 120, 2)) for _ in range(3)]
    cases += [torch.zeros(1, 3, 48, 64), torch.ones(1, 3, 50, 33)]  # no texture at all
    with torch.no_grad():
        for img in cases:
            out = model({"image0": img, "image1": img.flip(-1)})
            h, w = img.shape[-2:]
            assert out["warp0"].shape == (1, h, w, 2)
            for key in ("warp0", "certainty0", "warp1", "certainty1"):
                assert torch.isfinite(out[key]).all(), key
            s = model.sample(out, num=100)[0]
            assert all(torch.isfinite(v).all() for v in s.values())
    with pytest.raises((ValueError, RuntimeError)):
        with torch.no_grad():
            model({"image0": torch.rand(1, 3, 0, 16), "image1": torch.rand(1, 3, 32, 32)})


def test_non_finite_never_reaches_pycolmap(tmp_path):
    # the engine drops NaN/Inf matches before they are stored ...
    torch.manual_seed(0)
    engine = matching.Engine(DenseMatcher().eval(), matching.make_conf({"refine": False}),
                             tmp_path, torch.device("cpu"))
    try:
        s = {"keypoints0": torch.tensor([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0], [5.0, 5.0]]),
             "keypoints1": torch.tensor([[1.0, 2.0], [1.0, 1.0], [np.inf, 4.0], [6.0, 6.0]]),
             "scores": torch.tensor([0.5, 0.5, 0.5, np.nan])}
        im = {"scale": (2.0, 2.0)}
        res = engine.to_original(s, im, im)
    finally:
        engine.close()
    assert len(res["keypoints0"]) == 1 and np.isfinite(res["keypoints1"]).all()
    # ... and the importer refuses an h5 file that holds them, naming file and image
    feats = tmp_path / "features.h5"
    with h5py.File(feats, "w") as f:
        write_features(f, "a.png", [[1.0, 2.0], [np.nan, 3.0]], [1, 1], (64, 48))
    db_path = tmp_path / "db.db"
    with pycolmap.Database.open(db_path) as db:
        cid = db.write_camera(pycolmap.Camera(model="PINHOLE", width=64, height=48,
                                              params=[50, 50, 32, 24]))
        iid = db.write_image(pycolmap.Image(name="a.png", camera_id=cid))
        with pytest.raises(H5Error, match=r"features\.h5: keypoints of 'a.png' contain NaN"):
            import_features(db, {"a.png": iid}, feats)
        assert not db.exists_keypoints(iid)
