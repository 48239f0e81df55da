"""Every bad input of issue 10, one row each: what goes in and what must happen.

| input | behaviour |
|---|---|
| missing image folder | stop: error naming the folder, exit 2 |
| empty folder / only non-image files | stop: "no images found", exit 2 (other files ignored) |
| truncated or non-image file named .jpg, matching | stop: ImageError naming the file; earlier outputs kept |
| unreadable / tiny photos among many, SfM | skip with one warning per file, go on |
| grayscale, RGBA, 16-bit, CMYK, palette | accepted: converted to 8-bit RGB |
| EXIF orientation | applied; image_size and camera are the oriented ones |
| tiny (< 32 px) | ImageError naming the file and its size |
| huge (>= 8000 px a side) | accepted, downscaled for the network; > 120 MP refused from the header |
| same file name in two subfolders | distinct images (names are relative paths) |
| unicode and spaces in folder paths | accepted |
| pairs file naming unknown images | stop: "pairs.txt:LINE: unknown image", exit 2 |
| corrupt or foreign checkpoint | stop: error naming the file, exit 2 |
| corrupt h5 | stop: "corrupt or not an HDF5 file" naming it, exit 2; file left as is |
| GT folder not matching the images | stop before any work, exit 2; earlier outputs kept |
"""

import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import untrained_matcher
from pipelines import cli
from recon_match import matching
from recon_match.h5io import H5Error
from recon_match.imageio import ImageError, list_images, read_image, readable_images
from recon_match.pairs import write_pairs
from recon_match.preprocess import load_for_network
from recon_match.sfm import reconstruct
from recon_match.sfm.colmap import create_database

ROOT = Path(__file__).resolve().parents[1]
CONF = {"resize": 96, "mutual": False, "num_matches": 200, "refine": False, "batch_size": 2}


def texture(h=120, w=128, seed=0):
    rng = np.random.default_rng(seed)
    return (np.kron(rng.random((h // 4, w // 4, 3)), np.ones((4, 4, 1))) * 255).astype(np.uint8)


def save(path, array=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = array if isinstance(array, Image.Image) else Image.fromarray(
        texture() if array is None else array)
    img.save(path, **kw)
    return path


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def match(images, pairs, out, tmp, **kw):
    write_pairs(tmp / "pairs.txt", pairs)
    return matching.main(CONF, tmp / "pairs.txt", images, out, model=untrained_matcher(), progress=False, **kw)


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def cli_fails(argv, caplog, *patterns):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cli.main([str(a) for a in argv]) == 2
    text = caplog.text
    for p in patterns:
        assert p in text, (p, text)


# ------------------------------------------------------------------ one function per row

def case_missing_folder(tmp, caplog):
    missing = tmp / "no such folder"
    for argv in (["pairs", missing, "--out", tmp / "p.txt"],
                 ["sfm", missing, "--out", tmp / "o"],
                 ["match", missing, "--pairs", tmp / "p.txt", "--out", tmp / "o"]):
        cli_fails(argv, caplog, str(missing), "does not exist")
    assert not (tmp / "o").exists() and not (tmp / "p.txt").exists()
    # the same through a real process: exit status 2 and the folder on stderr
    res = subprocess.run([sys.executable, "-m", "pipelines.cli", "sfm", str(missing), "--out",
                          str(tmp / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and str(missing) in res.stderr, res.stderr


def case_empty_folder(tmp, caplog):
    (tmp / "empty").mkdir()
    cli_fails(["sfm", tmp / "empty", "--out", tmp / "o"], caplog, "empty", "no images found")
    (tmp / "notes").mkdir()  # non-image files are ignored, not read
    (tmp / "notes" / "readme.txt").write_text("x")
    (tmp / "notes" / ".DS_Store").write_bytes(b"\0\1")
    cli_fails(["sfm", tmp / "notes", "--out", tmp / "o"], caplog, "no images found")


def case_truncated_image(tmp, caplog):
    images = tmp / "images"
    save(images / "a.jpg", texture(seed=1), quality=95)
    save(images / "b.jpg", texture(seed=2), quality=95)
    feats, matches = match(images, [("a.jpg", "b.jpg")], tmp / "out", tmp)
    before = snapshot(tmp / "out")
    truncate(images / "b.jpg")  # the header still reads: only decoding finds it
    with pytest.raises(ImageError, match=r"b\.jpg: not a readable image .*truncated"):
        match(images, [("a.jpg", "b.jpg")], tmp / "out", tmp, overwrite=True)
    after = snapshot(tmp / "out")
    assert after[feats] == before[feats] and after[matches] == before[matches]


def case_non_image_with_image_name(tmp, caplog):
    images = tmp / "images"
    save(images / "a.png")
    (images / "b.jpg").write_text("this is a text file")
    with pytest.raises(ValueError, match=r"b\.jpg: not a readable image"):
        match(images, [("a.png", "b.jpg")], tmp / "out", tmp)
    with pytest.raises(ImageError, match=r"b\.jpg: not a readable image"):
        read_image(images / "b.jpg")


def case_bad_photos_among_many_sfm(tmp, caplog):
    images = tmp / "images"
    for i in range(3):
        save(images / f"ok{i}.png", texture(seed=i))
    truncate(save(images / "trunc.png", texture(seed=9)))
    (images / "junk.jpg").write_bytes(b"\xff\xd8garbage")
    save(images / "tiny.png", texture()[:20])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        names = readable_images(images, list_images(images))
    assert names == ["ok0.png", "ok1.png", "ok2.png"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for bad, why in (("trunc.png", "not a readable image"), ("junk.jpg", "not a readable image"),
                     ("tiny.png", "smaller than 32 px")):
        assert any(bad in w and why in w for w in warned), (bad, warned)
    # the CLI skips them too: with one good photo left it stops at "need 2 images", not
    # at the first bad file
    for i in (1, 2):
        (images / f"ok{i}.png").unlink()
    cli_fails(["sfm", images, "--out", tmp / "o"], caplog, "need at least 2 images")
    assert any("skipping" in r.getMessage() and "trunc.png" in r.getMessage()
               for r in caplog.records)


def case_color_modes(tmp, caplog):
    images = tmp / "images"
    rgb = Image.fromarray(texture())
    save(images / "gray.png", rgb.convert("L"))
    save(images / "rgba.png", rgb.convert("RGBA"))
    save(images / "cmyk.jpg", rgb.convert("CMYK"), quality=95)
    save(images / "palette.png", rgb.convert("P"))
    g16 = (np.asarray(rgb.convert("L"), np.uint16) * 257)
    save(images / "gray16.png", Image.fromarray(g16))
    names = list_images(images)
    for n in names:
        a = read_image(images / n)
        assert a.shape == (120, 128, 3) and a.dtype == np.uint8, n
        assert a.std() > 20, n  # content kept (16-bit scaled, not clipped to white)
    feats, _ = match(images, [("gray.png", "rgba.png"), ("cmyk.jpg", "gray16.png"),
                              ("palette.png", "gray.png")], tmp / "out", tmp)
    with h5py.File(feats) as f:
        assert sorted(f) == names
    ids = create_database(tmp / "db.db", images, names)  # pycolmap reads them too
    assert sorted(ids) == names


def case_exif_orientation(tmp, caplog):
    images = tmp / "images"
    img = Image.fromarray(texture(96, 128))  # stored 128 wide x 96 high
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    save(images / "rot.jpg", img, exif=exif, quality=95)
    save(images / "up.jpg", texture(128, 96, seed=3), quality=95)
    assert read_image(images / "rot.jpg").shape == (128, 96, 3)
    feats, _ = match(images, [("rot.jpg", "up.jpg")], tmp / "out", tmp)
    with h5py.File(feats) as f:
        assert tuple(f["rot.jpg"]["image_size"][()]) == (96, 128)  # (W, H) as displayed
        kp = f["rot.jpg"]["keypoints"][()]
        assert (kp[:, 0] <= 95.5).all() and (kp[:, 1] <= 127.5).all()


def case_tiny_image(tmp, caplog):
    path = save(tmp / "tiny.png", texture()[:31])
    with pytest.raises(ImageError, match=r"tiny\.png: 128x31 is smaller than 32 px"):
        read_image(path)
    save(tmp / "images" / "ok.png")
    save(tmp / "images" / "small.png", texture()[:, :16])
    with pytest.raises(ImageError, match=r"small\.png: 16x120 is smaller"):
        match(tmp / "images", [("ok.png", "small.png")], tmp / "out", tmp)


def case_huge_image(tmp, caplog):
    big = Image.new("L", (8000, 8000), 128)  # mostly uniform: cheap to write and decode
    big.paste(Image.fromarray(texture(400, 400)[..., 0]), (3800, 3800))
    path = save(tmp / "big.png", big, compress_level=1)
    net = load_for_network(path, 640)
    assert tuple(net["image"].shape) == (3, 640, 640) and net["scale"] == (12.5, 12.5)
    del net
    huge = save(tmp / "huge.png", Image.new("L", (12000, 11000)), compress_level=1)
    with pytest.raises(ImageError, match=r"huge\.png: 12000x11000 is too large"):
        read_image(huge)


def case_duplicate_names_in_subfolders(tmp, caplog):
    images = tmp / "images"
    save(images / "a" / "img.png", texture(seed=1))
    save(images / "b" / "img.png", texture(seed=2))
    save(images / "img.png", texture(seed=3))
    names = list_images(images)
    assert names == ["a/img.png", "b/img.png", "img.png"]
    feats, matches = match(images, [("a/img.png", "b/img.png"), ("a/img.png", "img.png")],
                           tmp / "out", tmp)
    with h5py.File(feats) as f:
        sizes = {n: len(f[n]["keypoints"]) for n in names}
        assert all(v > 0 for v in sizes.values())
    with h5py.File(matches) as f:
        assert len(f["a-img.png/b-img.png"]["matches0"]) == sizes["a/img.png"]
        assert len(f["a-img.png/img.png"]["matches0"]) == sizes["a/img.png"]


def case_unicode_and_spaces(tmp, caplog):
    images = tmp / "my photos ünïcødé" / "flug 1"
    save(images / "café.png", texture(seed=1))
    save(images / "日本.png", texture(seed=2))
    feats, matches = match(images, [("café.png", "日本.png")], tmp / "out dir é", tmp)
    with h5py.File(feats) as f:
        assert sorted(f) == ["café.png", "日本.png"]
    # a name with a space cannot go into a pairs file: a clear error, no file written
    save(images / "with space.png", texture(seed=4))
    cli_fails(["pairs", images, "--out", tmp / "p2.txt"], caplog, "with space.png", "spaces")
    assert not (tmp / "p2.txt").exists()


def case_pairs_unknown_image(tmp, caplog):
    images = tmp / "images"
    save(images / "a.png")
    save(images / "b.png", texture(seed=1))
    (tmp / "pairs.txt").write_text("a.png b.png\na.png ghost.png\n")
    cli_fails(["match", images, "--pairs", tmp / "pairs.txt", "--out", tmp / "o"], caplog,
              "pairs.txt:2: unknown image 'ghost.png'")
    assert not (tmp / "o").exists()


def case_bad_checkpoints(tmp, caplog):
    images = tmp / "images"
    save(images / "a.png")
    save(images / "b.png", texture(seed=1))
    write_pairs(tmp / "pairs.txt", [("a.png", "b.png")])
    (tmp / "corrupt.pt").write_bytes(b"PK\3\4 definitely not a zip")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp / "foreign.pt")
    for ckpt, why in (("corrupt.pt", "not a valid recon-match file"),
                      ("foreign.pt", "not a recon-match")):
        cli_fails(["match", images, "--pairs", tmp / "pairs.txt", "--out", tmp / "o",
                   "--weights", tmp / ckpt, "--device", "cpu"], caplog, ckpt, why)
        cli_fails(["sfm", images, "--out", tmp / "s", "--weights", tmp / ckpt], caplog, ckpt, why)
    cli_fails(["sfm", images, "--out", tmp / "s", "--weights", tmp / "none.pt"], caplog, "none.pt", "not found")
    assert not (tmp / "s" / "stats.json").exists()
    run = tmp / "run"
    run.mkdir()
    (run / "checkpoint_last.pt").write_bytes(b"\0" * 100)
    before = snapshot(run)
    cli_fails(["train", "--out", run, "--resume"], caplog, "checkpoint_last.pt")
    assert snapshot(run) == before


def case_corrupt_h5(tmp, caplog):
    images = tmp / "images"
    save(images / "a.png")
    save(images / "b.png", texture(seed=1))
    write_pairs(tmp / "pairs.txt", [("a.png", "b.png")])
    out = tmp / "o"
    out.mkdir()
    (out / "features.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    (out / "matches.h5").write_bytes(b"garbage")
    before = snapshot(out)
    cli_fails(["match", images, "--pairs", tmp / "pairs.txt", "--out", out], caplog,
              "matches.h5", "corrupt or not an HDF5 file")
    assert snapshot(out) == before  # never silently recreated
    with pytest.raises(H5Error, match=r"features\.h5: corrupt"):
        reconstruct(images, tmp / "sfm", out / "features.h5", out / "matches.h5",
                    tmp / "pairs.txt")
    assert not (tmp / "sfm" / "model").exists() and not (tmp / "sfm" / "database.db").exists()


def case_gt_mismatch(tmp, caplog):
    images = tmp / "images"
    save(images / "a.png")
    save(images / "b.png", texture(seed=1))
    gt = tmp / "gt"
    gt.mkdir()
    (gt / "cameras.txt").write_text("1 PINHOLE 128 120 100 100 64 60\n")
    (gt / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n2 1 0 0 0 1 0 0 1 other.png\n\n")
    (gt / "points3D.txt").write_text("")
    out = tmp / "o"
    out.mkdir()
    (out / "stats.json").write_text("{}")  # an earlier result that must survive
    before = snapshot(out)
    cli_fails(["sfm", images, "--out", out, "--gt", gt], caplog, str(gt),
              "ground truth does not match", "b.png")
    assert snapshot(out) == before
    cli_fails(["sfm", images, "--out", out, "--gt", tmp / "nogt"], caplog, "nogt")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, caplog):
    CASES[case](tmp_path, caplog)
