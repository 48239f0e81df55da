"""The synthetic mixture: exact dense ground truth per generator, determinism, styles, CLI."""

import json

import cv2
import numpy as np
import pytest
import torch

from recon_match.data import MixtureDataset
from recon_match.data import lifting, styles
from recon_match.data.dataset import _generators
from recon_match.data.sources import ImageSource, PROCEDURAL, procedural_image
from recon_match.geometry import backproject, project, warp_from_depth
from recon_match.imageio import to_gray

H, W = 120, 160
GENERATORS = sorted(_generators())
RAW = {"style_prob": 0.0, "photometric_prob": 0.0, "size": (H, W)}  # geometry only


def _raw(name, index, **conf):
    return MixtureDataset({**RAW, "weights": {name: 1.0}, **conf}).sample(index)


def _grid(h, w):
    return np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)


def _cycle_errors(warp_a, valid_a, warp_b, valid_b):
    """|warp_b(warp_a(p)) - p| on covisible pixels whose bilinear neighbourhood in the other
    image is valid and free of depth discontinuities (where interpolation is undefined)."""
    h, w = valid_a.shape
    # second differences vanish on smooth warps (any zoom or tilt) and jump at occlusion edges
    # (only between valid pixels: the edge of the valid region is handled by ok_b below)
    jump = np.zeros(valid_b.shape, np.float32)
    vb = valid_b
    jump[1:-1] = np.where(vb[2:] & vb[:-2], np.abs(warp_b[2:] - 2 * warp_b[1:-1] + warp_b[:-2]).max(-1), 0)
    jx = np.where(vb[:, 2:] & vb[:, :-2], np.abs(warp_b[:, 2:] - 2 * warp_b[:, 1:-1] + warp_b[:, :-2]).max(-1), 0)
    jump[:, 1:-1] = np.maximum(jump[:, 1:-1], jx)
    smooth = cv2.erode((jump < 1.0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ok_b = (valid_b & smooth).astype(np.float32)
    m = valid_a & (cv2.remap(ok_b, warp_a, None, cv2.INTER_LINEAR) > 0.999)
    back = cv2.remap(warp_b, warp_a, None, cv2.INTER_LINEAR)
    return np.linalg.norm(back - _grid(h, w), axis=-1)[m], m


@pytest.mark.parametrize("name", GENERATORS)
def test_warp_cycle_returns_within_half_pixel(name):
    for i in range(2 if name == "multiview" else 4):
        p = _raw(name, i)
        for a, b in ((0, 1), (1, 0)):
            err, m = _cycle_errors(p[f"warp{a}"], p[f"valid{a}"], p[f"warp{b}"], p[f"valid{b}"])
            # most covisible pixels are away from occlusion edges and are checked
            assert m.sum() >= 0.6 * p[f"valid{a}"].sum() - 50, (name, i, a)
            if not m.any():
                continue
            if name == "multiview":  # ray-traced curved silhouettes: bilinear lookups of
                # warp_b near grazing angles are off by up to ~1 px on a handful of pixels
                assert np.percentile(err, 99.9) < 0.5 and err.max() < 1.5, (name, i, a, err.max())
            else:
                assert err.max() < 0.5, (name, i, a, err.max())


@pytest.mark.parametrize("name", GENERATORS)
def test_image1_at_warp0_reproduces_image0(name):
    checked = 0
    for i in range(3 if name == "multiview" else 4):
        p = _raw(name, i)
        # blur both to a common resolution: the views resample fine texture at scales up to 4x
        # apart (s = image1 pixels per image0 pixel), which point sampling cannot compare
        both = p["valid0"][:, 1:] & p["valid0"][:, :-1]
        s = np.median(np.linalg.norm(np.diff(p["warp0"], axis=1), axis=-1)[both])
        im0 = cv2.GaussianBlur(p["image0"].astype(np.float32), (0, 0), max(1.0, 0.6 / s))
        im1 = cv2.GaussianBlur(p["image1"].astype(np.float32), (0, 0), max(1.0, 0.6 * s))
        valid = cv2.erode(p["valid0"].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if valid.sum() < 200:
            continue
        sampled = cv2.remap(im1, p["warp0"], None, cv2.INTER_LINEAR)
        diff = np.abs(sampled - im0).mean(-1)[valid]
        # textures are resampled at different scales in the two views: small median error
        assert np.median(diff) < 8, (name, i, np.median(diff))
        # and a wrong warp (shifted by 3 px) is clearly worse on the same pixels
        shifted = cv2.remap(im1, p["warp0"] + 3, None, cv2.INTER_LINEAR)
        assert np.median(np.abs(shifted - im0).mean(-1)[valid]) > np.median(diff)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("name", ["lifting", "multi_instance", "multiview"])
def test_occluded_pixels_are_invalid(name):
    """An independent occlusion test (geometry.warp_from_depth with view 1's depth) finds the
    image0 pixels hidden behind an occluder in view 1: none of them may be valid."""
    occluded_total = 0
    for i in range(2 if name == "multiview" else 6):
        if name == "lifting":
            rng = np.random.default_rng(i)
            p = lifting.make_pair(rng, ImageSource(), H, W, {"object_prob": 1.0, "max_objects": 3})
        elif name == "multi_instance":
            p = _raw(name, i, multi_instance={"lifted_prob": 1.0})
        else:
            p = _raw(name, i)
        depth1 = np.where(np.isfinite(p["depth1"]), p["depth1"], 0)
        warp, _ = warp_from_depth(p["depth0"], p["K0"], p["T0"], p["K1"], p["T1"])
        u, v = warp[..., 0], warp[..., 1]
        _, z = project(backproject(p["depth0"], p["K0"], p["T0"]), p["K1"], p["T1"])
        inside = (u > 0) & (u < W - 1) & (v > 0) & (v < H - 1) & (z > 0)
        ui, vi = np.clip(np.rint(u), 0, W - 1).astype(int), np.clip(np.rint(v), 0, H - 1).astype(int)
        d1 = depth1[vi, ui]
        occluded = inside & (d1 > 0) & (d1 < 0.9 * z)
        assert not (occluded & p["valid0"]).any(), (name, i)
        occluded_total += occluded.sum()
        # where both agree the point is seen, our warp is the projection
        wv, vv = warp_from_depth(p["depth0"], p["K0"], p["T0"], p["K1"], p["T1"], depth1, rel_tol=0.05)
        both = vv & p["valid0"]
        assert np.abs(wv - p["warp0"])[both].max() < 1e-2
    assert occluded_total > 100  # the scenes did contain occlusions


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_and_index_give_identical_bytes(name):
    conf = {"size": (H, W), "weights": {name: 1.0}, "style_prob": 1.0, "seed": 7}
    a, b = MixtureDataset(conf)[5], MixtureDataset(conf)[5]
    c = MixtureDataset(conf)[6]
    for k in ("image0", "image1", "warp0", "valid0", "warp1", "valid1"):
        assert a[k].numpy().tobytes() == b[k].numpy().tobytes(), k
    assert a["style"] == b["style"] and a["generator"] == b["generator"] == name
    assert not torch.equal(a["image0"], c["image0"])


def test_contract_shapes_dtypes_and_values():
    ds = MixtureDataset({"size": (H, W), "style_prob": 0.5})
    for i in range(3):
        p = ds[i]
        assert p["image0"].shape == p["image1"].shape == (3, H, W)
        assert p["image0"].dtype == torch.float32 and 0 <= p["image0"].min() and p["image1"].max() <= 1
        assert p["warp0"].shape == p["warp1"].shape == (H, W, 2) and p["warp0"].dtype == torch.float32
        assert p["valid0"].dtype == torch.bool and p["valid1"].shape == (H, W)
        assert isinstance(p["generator"], str) and isinstance(p["style"], str)
        w = p["warp0"][p["valid0"]]
        if len(w):  # valid warps land inside image1
            assert w[:, 0].min() >= -0.5 and w[:, 0].max() <= W - 0.5 and w[:, 1].max() <= H - 0.5


def test_unknown_keys_and_generators_are_rejected():
    with pytest.raises(ValueError, match="sise"):
        MixtureDataset({"sise": (2, 2)})
    with pytest.raises(ValueError, match="nosuch"):
        MixtureDataset({"weights": {"nosuch": 1.0}})
    with pytest.raises(ValueError, match="max_scal"):
        MixtureDataset({"homography": {"max_scal": 2}})
    with pytest.raises(ValueError, match="held-out"):
        MixtureDataset({"held_out_styles": ["infrared"]})


def test_dataloader_workers_match_direct_indexing():
    ds = MixtureDataset({"size": (64, 80), "seed": 3})
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2,
                                         sampler=list(range(4)))
    batches = list(loader)
    for j, batch in enumerate(batches):
        for k in range(2):
            direct = ds[2 * j + k]
            assert torch.equal(batch["warp0"][k], direct["warp0"])
            assert torch.equal(batch["image1"][k], direct["image1"])


def test_homography_respects_rotation_and_scale_limits():
    """No tilt, no rotation, scale 1: warp0 is a pure translation of image0."""
    conf = {"max_tilt": 0.0, "max_rotation": 0.0, "max_scale": 1.0, "distortion_prob": 0.0,
            "focal_range": (1.0, 1.0)}
    p = _raw("homography", 0, homography=conf)
    d = p["warp0"] - _grid(H, W)
    assert p["valid0"].mean() > 0.5
    assert np.ptp(d[p["valid0"]], axis=0).max() < 1e-2


def test_homography_with_lens_distortion_keeps_exact_gt():
    conf = {"distortion_prob": 1.0, "max_distortion": 0.15}
    p = _raw("homography", 1, homography=conf)
    err, m = _cycle_errors(p["warp0"], p["valid0"], p["warp1"], p["valid1"])
    assert m.any() and err.max() < 0.5


def test_held_out_styles_only_in_validation():
    train = MixtureDataset({"size": (64, 80), "style_prob": 1.0})
    seen = {train.sample(i)["style"] for i in range(40)}
    assert not seen & set(styles.DEFAULT_HELD_OUT)
    assert len(seen - {"none"}) >= 3
    val = MixtureDataset({"size": (64, 80), "style_prob": 1.0, "split": "val", "include_held_out": True})
    assert set(val.styles) == set(styles.STYLES)


def test_gray_prob_greys_images_and_keeps_geometry():
    base = {"size": (64, 80), "seed": 4, "style_prob": 0.0}
    plain, grey = MixtureDataset(base), MixtureDataset(base | {"gray_prob": 0.5})
    n_grey = 0
    for i in range(16):
        a, b = plain.sample(i), grey.sample(i)
        for k in ("warp0", "valid0", "warp1", "valid1"):
            assert np.array_equal(a[k], b[k]), k
        for k in ("image0", "image1"):
            if np.array_equal(a[k], b[k]):
                continue
            n_grey += 1  # a greyed image: equal channels, same luminance as the colour one
            assert np.array_equal(b[k][..., 0], b[k][..., 2])
            assert np.array_equal(b[k], to_gray(a[k]))
    assert 6 <= n_grey <= 26  # 32 images at p = 0.5


@pytest.mark.parametrize("name", styles.STYLES)
def test_each_style_changes_appearance_not_shape(name):
    rng = np.random.default_rng(0)
    img = procedural_image(rng, H, W, "shapes")
    aux = {"depth1": np.linspace(1, 3, H * W, dtype=np.float32).reshape(H, W)}
    out, got = styles.apply_style(rng, img, (name,), aux)
    assert got == name and out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() > 5


def test_procedural_sources_have_texture():
    for kind in PROCEDURAL:
        img = procedural_image(np.random.default_rng(1), H, W, kind)
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        assert cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).std() > 3, kind


def test_photo_splits_are_disjoint(shared_data):
    root = shared_data / "natural"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    train, val = ImageSource(root, "train"), ImageSource(root, "val")
    assert train.photos and val.photos and not set(train.photos) & set(val.photos)
    p = MixtureDataset({"size": (64, 80), "photo_root": str(root), "photo_prob": 1.0}).sample(0)
    assert p["source"] == "photo"


def test_missing_photo_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        MixtureDataset({"photo_root": str(tmp_path)})


def test_synth_cli_writes_contact_sheet(tmp_path):
    from pipelines.cli import main
    assert main(["synth", "--preview", "3", "--out", str(tmp_path), "--size", "64", "80"]) == 0
    sheet = cv2.imread(str(tmp_path / "preview.png"))
    assert sheet.shape[1] == 160 and sheet.shape[0] >= 3 * 64
    assert len(json.loads((tmp_path / "preview.json").read_text())["pairs"]) == 3
