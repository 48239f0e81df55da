"""The matching engine end to end on tiny images with the real network (random weights)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import untrained_matcher
from pipelines import cli
from recon_match import matching
from recon_match.h5io import H5Error, names_to_pair
from recon_match.pairs import select, write_pairs
from recon_match.subpixel import refine_matches

ROOT = Path(__file__).resolve().parents[1]
CONF = {"resize": 96, "mutual": False, "num_matches": 400, "refine": False, "batch_size": 2}


def textured(h, w, seed):
    rng = np.random.default_rng(seed)
    small = rng.random((h // 4, w // 4, 3))
    img = np.kron(small, np.ones((4, 4, 1)))
    return (img * 255).astype(np.uint8)


@pytest.fixture()
def scene(tmp_path):
    images = tmp_path / "images"
    (images / "sub dir").mkdir(parents=True)
    base = textured(160, 224, 0)
    names = []
    for i in range(6):  # overlapping crops of one texture
        name = f"sub dir/v{i}.png" if i == 5 else f"v{i}.png"
        Image.fromarray(base[8 * (i % 3):8 * (i % 3) + 120, 10 * i:10 * i + 128]).save(images / name)
        names.append(name)
    return images, names


def hloc_get_matches(path, name0, name1):
    """hloc.utils.io.get_matches, as upstream reads matches.h5."""
    with h5py.File(str(path), "r", libver="latest") as hfile:
        dset = hfile[names_to_pair(name0, name1)]
        matches = dset["matches0"].__array__()
        scores = dset["matching_scores0"].__array__()
    idx = np.where(matches != -1)[0]
    return np.stack([idx, matches[idx]], -1), scores[idx]


def test_outputs_in_hloc_layout(scene, tmp_path):
    images, names = scene
    # spaces are not allowed in pairs files: use the five top-level images
    write_pairs(tmp_path / "pairs.txt", select.exhaustive(names[:5]))
    feats, matches = matching.main(CONF, tmp_path / "pairs.txt", images, tmp_path / "out",
                                   model=untrained_matcher(), progress=False)
    assert feats.name == "feats-matches-recon-dense.h5" and matches.name == "matches-recon-dense_pairs.h5"
    with h5py.File(feats) as f:
        for n in names[:5]:
            kp = f[n]["keypoints"][()]
            assert kp.dtype == np.float32 and kp.shape[1] == 2 and len(kp) > 0
            assert f[n]["scores"].shape == (len(kp),)
            assert tuple(f[n]["image_size"][()]) == (128, 120)
            assert np.isfinite(kp).all() and (kp >= -0.5).all() and (kp[:, 0] <= 127.5).all()
    total = 0
    with h5py.File(feats) as f:
        for n0, n1 in select.exhaustive(names[:5]):
            m, s = hloc_get_matches(matches, n0, n1)
            with h5py.File(matches) as fm:
                g = fm[names_to_pair(n0, n1)]
                assert g["matches0"].dtype == np.int32 and g["matching_scores0"].dtype == np.float16
                assert len(g["matches0"]) == len(f[n0]["keypoints"])
            assert (m[:, 1] < len(f[n1]["keypoints"])).all()
            assert len(np.unique(m[:, 1])) == len(m)  # one-to-one
            total += len(m)
        assert total > 0
    with h5py.File(matches) as fm:
        assert fm.attrs["mean_track_length"] >= 2.0


def test_zero_match_pairs_and_refinement(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(textured(96, 128, 1)).save(images / "tex.png")
    Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(images / "flat.png")
    Image.fromarray(np.full((96, 128, 3), 91, np.uint8)).save(images / "flat2.png")
    write_pairs(tmp_path / "pairs.txt", [("tex.png", "flat.png"), ("flat.png", "flat2.png")])
    feats, matches = matching.main({**CONF, "refine": True, "keep_unrefined": False}, tmp_path / "pairs.txt",
                                   images, tmp_path, model=untrained_matcher(), progress=False)
    keys = (names_to_pair("tex.png", "flat.png"), names_to_pair("flat.png", "flat2.png"))
    with h5py.File(matches) as f:  # flat images cannot pass the NCC check: no matches at all
        for key in keys:
            assert (f[key]["matches0"][()] == -1).all()
    # kept instead: exactly the unrefined matches (the refinement could place none of them)
    runs = [matching.main({**CONF, "refine": r, "keep_unrefined": True}, tmp_path / "pairs.txt", images,
                          tmp_path / f"keep{r}", model=untrained_matcher(), progress=False) for r in (True, False)]
    for key in keys:
        (m_ref, m_raw) = [h5py.File(m)[key]["matches0"][()] for _, m in runs]
        assert (m_ref >= 0).any()
        np.testing.assert_array_equal(m_ref, m_raw)
    for name in ("tex.png", "flat.png"):
        np.testing.assert_array_equal(*[h5py.File(f)[name]["keypoints"][()] for f, _ in runs])


def test_keep_unrefined_is_decided_at_quantization(tmp_path):
    """The raw store keeps every match with its `refined` flag; `keep_unrefined` only acts
    when quantizing (after the pair gate has counted all of a pair's matches), so changing it
    re-quantizes the same raw matches without matching again."""
    images = tmp_path / "images"
    images.mkdir()
    tex = textured(96, 128, 2)
    Image.fromarray(tex).save(images / "a.png")
    Image.fromarray(np.roll(tex, (3, 5), (0, 1))).save(images / "b.png")
    write_pairs(tmp_path / "pairs.txt", [("a.png", "b.png")])
    key = names_to_pair("a.png", "b.png")
    counts = []
    for setting in (True, 1):
        (tmp_path / "matches-recon-dense_pairs.h5").unlink(missing_ok=True)
        feats, matches = matching.main({**CONF, "refine": True, "keep_unrefined": setting},
                                       tmp_path / "pairs.txt", images, tmp_path,
                                       model=untrained_matcher(), progress=False)
        with h5py.File(matches) as f:
            counts.append(int((f[key]["matches0"][()] >= 0).sum()))
    shards = list((tmp_path / "matches-recon-dense_pairs-raw").glob("shard-*.h5"))
    assert len(shards) == 1  # matched once
    with h5py.File(shards[0]) as f:
        refined = f[key]["refined"][()]
    assert 0 < refined.sum() < len(refined)
    assert 0 < counts[1] <= refined.sum() < counts[0]


SHIFT = np.array([2.3, -1.6], np.float32)


def smooth_texture(seed):
    """A 240 x 320 float32 texture with ~4 px blobs, and the same shifted by SHIFT px (x, y)."""
    rng = np.random.default_rng(seed)
    img = np.kron(rng.random((60, 80)), np.ones((4, 4))).astype(np.float32) * 255
    img = torch.nn.functional.avg_pool2d(torch.tensor(img)[None, None], 5, 1, 2)[0, 0].numpy()
    ys, xs = np.mgrid[0:240, 0:320].astype(np.float32)
    return img, cv2.remap(img, xs - SHIFT[0], ys - SHIFT[1], cv2.INTER_CUBIC)


def opencv_ncc(img0, img1, anchor, moving, window, search):
    """The NCC search done directly with OpenCV, one match: (best score, template std,
    best integer offset (x, y) of `moving`, whether the peak is inside the search area)."""
    r, s = window // 2, int(np.ceil(search))
    tmpl = cv2.getRectSubPix(img0, (2 * r + 1,) * 2, tuple(map(float, anchor)))
    area = cv2.getRectSubPix(img1, (2 * (r + s) + 1,) * 2, tuple(map(float, moving)))
    res = cv2.matchTemplate(area, tmpl, cv2.TM_CCOEFF_NORMED)
    _, best, _, (u, v) = cv2.minMaxLoc(res)
    return best, tmpl.std(), np.array([u - s, v - s]), 0 < u < 2 * s and 0 < v < 2 * s


def shifted_guesses(seed, num, low, high, noise):
    """`num` anchors in [low, high)^2 px and guesses of their SHIFT-ed positions, each off by
    up to `noise` px per axis."""
    rng = np.random.default_rng(seed)
    anchors = rng.uniform(low, high, (num, 2)).astype(np.float32)
    return anchors, anchors + SHIFT + rng.uniform(-noise, noise, anchors.shape).astype(np.float32)


def test_ncc_refinement_recovers_subpixel_shift():
    img, moved = smooth_texture(0)
    anchors, guess = shifted_guesses(0, 200, 40, 200, noise=3)
    refined, ncc, ok = refine_matches(img, moved, anchors, guess, window=15, search=5)
    err = np.linalg.norm(refined - (anchors + SHIFT), axis=1)
    assert ok.mean() > 0.9 and np.median(err[ok]) < 0.1
    np.testing.assert_array_equal(refined[~ok], guess[~ok])


def test_ncc_refinement_agrees_with_opencv():
    img, moved = smooth_texture(1)
    # guesses up to 6 px off with a 4.3 px search: some peaks fall on the search border
    anchors, guess = shifted_guesses(1, 40, 20, 220, noise=6)
    refined, ncc, ok = refine_matches(img, moved, anchors, guess, window=15, search=4.3)
    for i in range(len(anchors)):
        best, _, offset, inside = opencv_ncc(img, moved, anchors[i], guess[i], 15, 4.3)
        assert ncc[i] == pytest.approx(best, abs=1e-4)
        assert ok[i] == (best >= 0.8 and inside)
        if ok[i]:  # the integer offset plus a parabolic correction of at most half a pixel
            assert np.abs(refined[i] - guess[i] - offset).max() <= 0.5 + 1e-4
        else:
            np.testing.assert_array_equal(refined[i], guess[i])
    assert 10 < ok.sum() < len(ok)


def test_ncc_refinement_borders_flat_and_non_finite():
    img = smooth_texture(2)[0]
    flat = img.copy()
    flat[100:140, 150:190] = 77.0  # a flat square in the anchor image only
    # templates and search areas over the left, top and bottom borders and beyond (not the
    # top-right corner, where cv2.getRectSubPix replicates the wrong column), a flat template,
    # non-finite input; guesses 0.4 px right of and 0.3 px above the anchors' positions
    anchors = np.array([[0.3, 50], [-4.2, 120], [60.5, 0.4], [100, 239.6], [3, 236],
                        [170, 120], [np.nan, 50], [80, 80]], np.float32)
    guess = anchors + np.array([0.4, -0.3], np.float32)
    guess[7] = [np.inf, 80]
    refined, ncc, ok = refine_matches(flat, img, anchors, guess, window=15, search=3)
    for i in range(6):
        best, std, _, inside = opencv_ncc(flat, img, anchors[i], guess[i], 15, 3)
        if std >= 1e-2:
            assert ncc[i] == pytest.approx(best, abs=1e-4)
        assert ok[i] == (std >= 1e-2 and best >= 0.8 and inside)
    assert ok[:5].all()  # replicated pixels, which do not move, bias the fit a little
    np.testing.assert_allclose(refined[:5], anchors[:5], atol=0.25)
    assert not ok[5:].any() and (ncc[5:] == 0).all()
    np.testing.assert_array_equal(refined[5:], guess[5:])


def test_batches_group_equal_sizes():
    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d")]
    sizes = {"a": (96, 64), "b": (96, 64), "c": (96, 64), "d": (64, 96)}
    batches = matching.make_batches(pairs, sizes, 2)
    assert batches == [[0, 1], [2], [3]]


def test_bad_inputs(scene, tmp_path):
    images, names = scene
    (tmp_path / "pairs.txt").write_text("v0.png missing.png\n")
    with pytest.raises(ValueError, match=r"pairs.txt:1: unknown image 'missing.png'"):
        matching.main(CONF, tmp_path / "pairs.txt", images, tmp_path, model=untrained_matcher())
    with pytest.raises(ValueError, match="unknown matching option"):
        matching.main({"batchsize": 2}, tmp_path / "pairs.txt", images, tmp_path)
    write_pairs(tmp_path / "pairs.txt", [("v0.png", "v1.png")])
    feats = tmp_path / "feats-matches-recon-dense.h5"
    matches = tmp_path / "matches-recon-dense_pairs.h5"
    feats.write_bytes(b"not an h5 file")
    matches.write_bytes(b"not an h5 file")
    with pytest.raises(H5Error, match="matches-recon-dense_pairs.h5: corrupt"):
        matching.main(CONF, tmp_path / "pairs.txt", images, tmp_path, model=untrained_matcher())


RUNNER = """
import sys, torch
torch.set_num_threads(1)
sys.path[:0] = [{root!r}, {root!r} + "/tests"]
from conftest import untrained_matcher
from tests.test_matching import CONF
from recon_match import matching
matching.main({{**CONF, "batch_size": 1, "shard_size": 2}}, sys.argv[1], sys.argv[2], sys.argv[3],
              model=untrained_matcher(), progress=False)
"""


def run_matching(script, pairs, images, out):
    return subprocess.Popen([sys.executable, str(script), str(pairs), str(images), str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def read_all(feats, matches):
    out = {}
    for path in (feats, matches):
        with h5py.File(path) as f:
            f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return out


def test_kill_and_resume_gives_identical_outputs(scene, tmp_path):
    images, names = scene
    pairs = tmp_path / "pairs.txt"
    write_pairs(pairs, select.exhaustive(names[:4]))  # 6 pairs, 3 shards of 2
    script = tmp_path / "run.py"
    script.write_text(RUNNER.format(root=str(ROOT)))
    # the uninterrupted reference runs here, with the same settings as the subprocess
    matching.main({**CONF, "batch_size": 1, "shard_size": 2}, pairs, images, tmp_path / "ref",
                  model=untrained_matcher(), progress=False)

    out = tmp_path / "killed"
    proc = run_matching(script, pairs, images, out)
    raw = out / "matches-recon-dense_pairs-raw"
    deadline = time.time() + 120
    while not list(raw.glob("shard-*.h5")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # nothing half-written under a final name
    assert not (out / "matches-recon-dense_pairs.h5").exists()
    assert not (out / "feats-matches-recon-dense.h5").exists()
    done_before = len(list(raw.glob("shard-*.h5")))
    assert 1 <= done_before < 3

    resumed = run_matching(script, pairs, images, out)
    log = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, log
    a = read_all(tmp_path / "ref" / "feats-matches-recon-dense.h5",
                 tmp_path / "ref" / "matches-recon-dense_pairs.h5")
    b = read_all(out / "feats-matches-recon-dense.h5", out / "matches-recon-dense_pairs.h5")
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_cli_pairs_and_match(scene, tmp_path, monkeypatch):
    images, names = scene
    pairs = tmp_path / "pairs.txt"
    assert cli.main(["pairs", str(images), "--out", str(pairs), "--method", "sequential",
                     "--window", "1"]) == 2  # "sub dir/v5.png" cannot be written: clean error
    (images / "sub dir" / "v5.png").unlink()
    (images / "sub dir").rmdir()
    assert cli.main(["pairs", str(images), "--out", str(pairs), "--method", "sequential",
                     "--window", "1"]) == 0
    assert len(pairs.read_text().splitlines()) == 4 + 4  # window 1 + jumps i+2, i+4
    assert cli.main(["match", str(images), "--pairs", str(tmp_path / "nope.txt"),
                     "--out", str(tmp_path / "o")]) == 2


def test_unrotate_points_inverts_rotate_image():
    image = {"image": torch.arange(12.0).reshape(1, 3, 4), "size": (4, 3), "scale": (2.0, 1.0),
             "gray": np.arange(12, dtype=np.uint8).reshape(3, 4)}
    ys, xs = np.mgrid[0:3, 0:4]
    for k in (1, 2, 3):
        turned = matching.rotate_image(image, k)
        h, w = turned["gray"].shape
        assert turned["size"] == (w, h) and turned["image"].shape[-2:] == (h, w)
        assert turned["scale"] == ((1.0, 2.0) if k % 2 else (2.0, 1.0))
        ty, tx = np.mgrid[0:h, 0:w]
        back = matching.unrotate_points(np.stack([tx.ravel(), ty.ravel()], 1).astype(float), k, (4, 3))
        # the pixel at each turned position holds the value of the original pixel it maps back to
        orig = image["gray"][back[:, 1].astype(int), back[:, 0].astype(int)]
        np.testing.assert_array_equal(turned["gray"].ravel(), orig)
        np.testing.assert_array_equal(turned["image"][0].numpy().ravel(), orig)


def test_rotation_search_matches_a_turned_view(tmp_path):
    """A drone strip reversing heading: image1 is image0's scene turned by 90 degrees. Upright
    matching with square NCC windows places (almost) nothing; the search finds the turn and
    returns keypoints1 in image1's own frame, where they agree with the exact mapping."""
    from recon_match.data.sources import procedural_image
    from recon_match.model import load_matcher
    tex = procedural_image(np.random.default_rng(4), 272, 352, kind="dead_leaves")
    Image.fromarray(tex[:240, :320]).save(tmp_path / "a.png")
    Image.fromarray(np.rot90(tex[16:256, 24:344], 1)).save(tmp_path / "b.png")  # 240 x 320 -> 320 x 240
    net = load_matcher(device="cpu")
    counts = {}
    for below in (0, 200):
        conf = matching.make_conf({"rotation_search_below": below, "refine_affine": False})
        engine = matching.Engine(net, conf, tmp_path, torch.device("cpu"))
        images = {n: engine.load(n) for n in ("a.png", "b.png")}
        res = engine.match_batch([("a.png", "b.png")], images)[0]
        engine.close()
        counts[below] = matching.support(res)
    assert counts[0] < 50 and counts[200] > 500, counts
    k0, k1 = res["keypoints0"], res["keypoints1"]
    shifted = k0 - [24, 16]  # in the crop before turning (W = 320), then turned counter-clockwise
    expected = np.stack([shifted[:, 1], 320 - 1 - shifted[:, 0]], 1)
    err = np.linalg.norm(k1 - expected, axis=1)
    assert np.median(err) < 0.5 and np.mean(err < 2) > 0.9, (np.median(err), np.mean(err < 2))


def test_grid_sampler_flags_inconsistent_matches():
    """A translation both ways except a block of image0 whose forward warp is wrong: those
    anchors are kept but not `consistent`; `mutual_px` drops them instead."""
    from recon_match.coords import pixel_grid
    from recon_match.gridsample import sample_grid
    h, w, shift = 32, 48, torch.tensor([5.0, 2.0])
    g = pixel_grid(h, w, dtype=torch.float32)
    warp0, warp1 = g + shift, g - shift
    warp0[:16, :16] += 7.0  # wrong, and the backward warp says so
    out = {"warp0": warp0[None], "warp1": warp1[None], "certainty0": torch.ones(1, h, w),
           "certainty1": torch.ones(1, h, w)}
    s = sample_grid(out, num=10_000, stride=4, mutual_px=None)[0]
    kp0 = s["keypoints0"]
    bad, good = (kp0 < 14).all(1), (kp0 > 17).any(1)  # in the wrong block / clear of it (bilinear edges)
    assert bad.sum() > 10 and not s["consistent"][bad].any() and s["consistent"][good].all()
    inside = (s["keypoints1"] > -0.5).all(1) & (s["keypoints1"][:, 0] < w - 0.5) & (s["keypoints1"][:, 1] < h - 0.5)
    assert inside.all()
    strict = sample_grid(out, num=10_000, stride=4, mutual_px=3.0)[0]
    assert len(strict["scores"]) == int(s["consistent"].sum()) and strict["consistent"].all()


def test_ncc_refinement_follows_the_local_affine():
    """A view turned by 40 degrees and zoomed 1.3x: a square window fails, the affine pass
    (given a slightly wrong Jacobian, as a network's) places most matches to < 0.2 px."""
    img = smooth_texture(3)[0]
    A = cv2.getRotationMatrix2D((160, 120), 40, 1.3)
    turned = cv2.warpAffine(img, A, (320, 240), flags=cv2.INTER_CUBIC)
    rng = np.random.default_rng(3)
    anchors = rng.uniform([110, 80], [210, 160], (300, 2)).astype(np.float32)
    true = (anchors @ A[:, :2].T + A[:, 2]).astype(np.float32)
    guess = true + rng.uniform(-2, 2, true.shape).astype(np.float32)
    square = refine_matches(img, turned, anchors, guess, window=15, search=4)[2]
    jac = np.repeat(A[None, :, :2], len(anchors), 0) + rng.normal(0, 0.03, (len(anchors), 2, 2))
    refined, _, ok = refine_matches(img, turned, anchors, guess, window=15, search=4, affine=jac)
    assert square.mean() < 0.05 and ok.mean() > 0.9
    assert np.median(np.linalg.norm(refined - true, axis=1)[ok]) < 0.2
    np.testing.assert_array_equal(refined[~ok], guess[~ok])
    # where the square window works, the affine pass changes nothing
    anchors, guess = shifted_guesses(4, 100, 40, 200, noise=3)
    img, moved = smooth_texture(4)
    plain = refine_matches(img, moved, anchors, guess, window=15, search=5)
    with_affine = refine_matches(img, moved, anchors, guess, window=15, search=5,
                                 affine=np.tile(np.eye(2), (100, 1, 1)))
    assert plain[2].mean() > 0.9
    np.testing.assert_array_equal(plain[0][plain[2]], with_affine[0][plain[2]])


def test_sane_affine_replaces_implausible_maps():
    from recon_match.subpixel import sane_affine
    rot = cv2.getRotationMatrix2D((0, 0), 120, 1.5)[:, :2]
    maps = np.stack([rot, np.diag([1.0, -1.0]), np.diag([10.0, 10.0]), np.diag([3.0, 0.5]),
                     np.full((2, 2), np.nan)])
    out = sane_affine(maps)
    np.testing.assert_allclose(out[0], rot, rtol=1e-6)
    for k in range(1, 5):  # mirrored, too large, too anisotropic, not finite
        np.testing.assert_array_equal(out[k], np.eye(2))


def test_grid_sampler_gives_the_warps_jacobian():
    """A linear warp (rotation and zoom) sampled on the grid: `affine` is its matrix, also
    within a box's width of the borders."""
    from recon_match.coords import pixel_grid
    from recon_match.gridsample import sample_grid
    h, w = 40, 56
    M = torch.tensor([[0.9, -0.3], [0.3, 0.9]])
    g = pixel_grid(h, w, dtype=torch.float32)
    warp0 = g @ M.T + torch.tensor([4.0, 3.0])
    warp1 = (g - torch.tensor([4.0, 3.0])) @ torch.linalg.inv(M).T
    out = {"warp0": warp0[None], "warp1": warp1[None], "certainty0": torch.ones(1, h, w),
           "certainty1": torch.ones(1, h, w)}
    s = sample_grid(out, num=10_000, stride=4, mutual_px=None)[0]
    a0, aff = s["anchor0"], s["affine"]
    assert a0.any() and (~a0).any()
    torch.testing.assert_close(aff[a0], M.expand(int(a0.sum()), 2, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(aff[~a0], torch.linalg.inv(M).expand(int((~a0).sum()), 2, 2),
                               atol=1e-4, rtol=0)


def test_keeps_unrefined_settings():
    assert matching.keeps_unrefined(True, 5000) and not matching.keeps_unrefined(False, 0)
    assert matching.keeps_unrefined(200, 199) and not matching.keeps_unrefined(200, 200)
    for bad in (-1, "yes"):
        with pytest.raises(ValueError, match="keep_unrefined"):
            matching.make_conf({"keep_unrefined": bad})


def test_weak_pairs_keeps_each_images_best_pair():
    ring = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("a", "c"), ("b", "d")]
    counts = [900, 800, 1000, 700, 30, 200]  # the two diagonals overlap less
    assert matching.weak_pairs(ring, counts, 0.2) == {4}  # b-d: 200 >= 0.2 * min(900, 1000)
    assert matching.weak_pairs(ring, counts, 0.25) == {4, 5}
    assert matching.weak_pairs(ring, counts, 0.0) == set()
    # an image whose pairs are all weak still keeps its best one
    assert 4 not in matching.weak_pairs(ring[:4] + [("a", "e"), ("e", "c")], counts[:4] + [10, 5], 0.2)
    assert matching.weak_pairs(ring, [0] * 6, 0.5) == set()  # nothing confident: nothing to compare
    # images whose best pair has fewer than min_best confident matches are not judged
    assert matching.weak_pairs(ring, counts, 0.25, min_best=950) == set()
    assert matching.weak_pairs(ring, counts, 0.25, min_best=900) == {4, 5}
    with pytest.raises(ValueError, match="pair_gate"):
        matching.make_conf({"pair_gate": 1.5})


def test_pair_gate_empties_a_pair_without_overlap(tmp_path):
    """Shipped weights: two crops of each of two textures. The pairs within a texture match
    confidently; the pair across them is gated and written with no matches (hloc reads it as
    an empty pair), though it has some without the gate."""
    from recon_match.model import load_matcher
    images = tmp_path / "images"
    images.mkdir()
    for name, seed in (("a", 0), ("b", 7)):
        tex = textured(160, 224, seed)
        for i in range(2):
            Image.fromarray(tex[16 * i:16 * i + 128, 32 * i:32 * i + 160]).save(images / f"{name}{i}.png")
    pairs = [("a0.png", "a1.png"), ("b0.png", "b1.png"), ("a0.png", "b1.png")]
    write_pairs(tmp_path / "pairs.txt", pairs)
    runs = {}
    for gate in (0.0, 0.2):
        _, matches = matching.main({**CONF, "resize": 160, "pair_gate": gate}, tmp_path / "pairs.txt", images,
                                   tmp_path / f"gate{gate}", model=load_matcher(), progress=False)
        runs[gate] = [len(hloc_get_matches(matches, *p)[0]) for p in pairs]
    assert min(runs[0.2][:2]) > 100
    assert runs[0.2][2] == 0 < runs[0.0][2]

