"""Pair selection and hloc's pairs format."""

import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image

from recon_match import pairs as rm_pairs
from recon_match.model import DenseMatcher
from recon_match.pairs import read_pairs, select, spatial, write_pairs

NAMES = [f"img{i:02d}.jpg" for i in range(10)]



def keyset(pairs):
    return {tuple(sorted(p)) for p in pairs}


def test_exhaustive_and_sequential():
    assert len(keyset(select.exhaustive(NAMES))) == 45
    seq = list(select.sequential(NAMES, window=2, quadratic=False))
    assert keyset(seq) == {(NAMES[i], NAMES[j]) for i in range(10) for j in range(i + 1, min(i + 3, 10))}
    quad = keyset(select.sequential(NAMES, window=2, quadratic=True))
    assert (NAMES[0], NAMES[4]) in quad and (NAMES[0], NAMES[8]) in quad
    loops = keyset(select.sequential(NAMES, window=2, quadratic=False, loops=[(NAMES[9], NAMES[0])]))
    assert (NAMES[0], NAMES[9]) in loops


def test_retrieval_top_k_by_cosine():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 16))
    desc = np.concatenate([base, base + 0.01 * rng.normal(size=base.shape)])  # i ~ i + 5
    pairs = keyset(select.retrieval(NAMES, desc, num=1))
    assert pairs == {(NAMES[i], NAMES[i + 5]) for i in range(5)}
    excl = keyset(select.retrieval(NAMES, desc, num=1, exclude=5))
    assert all(abs(NAMES.index(a) - NAMES.index(b)) > 5 for a, b in excl)
    with pytest.raises(ValueError, match="descriptors"):
        list(select.retrieval(NAMES, desc[:3], num=1))


def test_retrieval_with_our_network(tmp_path):
    rng = np.random.default_rng(1)
    a = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    b = np.full((64, 80, 3), 128, np.uint8)
    for name, img in [("a0.png", a), ("a1.png", a[:, ::-1].copy()), ("b0.png", b), ("b1.png", b + 3)]:
        Image.fromarray(img).save(tmp_path / name)
    torch.manual_seed(0)
    out = rm_pairs.main(tmp_path, tmp_path / "pairs.txt", "retrieval", num_pairs=1,
                        model=DenseMatcher().eval(), resize=64)
    got = keyset(read_pairs(out))
    assert ("b0.png", "b1.png") in got and ("a0.png", "a1.png") in got


def test_spatial_from_latlon_csv(tmp_path):
    csv = tmp_path / "gps.csv"
    rows = ["filename,latitude,longitude,gps_altitude_m"]
    for i, n in enumerate(NAMES):  # a strip heading north, ~11 m apart
        rows.append(f"{n},{30.0 + i * 1e-4:.6f},-98.0,400")
    csv.write_text("\n".join(rows) + "\n")
    pos = spatial.positions_from_csv(csv, NAMES)
    np.testing.assert_allclose(np.diff(pos[:, 1]), 11.13, atol=0.05)  # metres north
    got = keyset(spatial.spatial(NAMES, pos, num=2))
    # middle images pair with both neighbours; the two ends reach two steps along the strip
    expected = keyset(select.sequential(NAMES, window=1, quadratic=False))
    assert got == expected | {(NAMES[0], NAMES[2]), (NAMES[7], NAMES[9])}


def test_spatial_from_xyz_csv_and_errors(tmp_path):
    csv = tmp_path / "xyz.csv"
    csv.write_text("name,x,y,z\n" + "".join(f"{n},{i * 2.0},0,0\n" for i, n in enumerate(NAMES)))
    np.testing.assert_allclose(spatial.positions_from_csv(csv, NAMES)[:, 0], np.arange(10) * 2.0)
    csv.write_text("name,x,y,z\nimg00.jpg,1,2\n")
    with pytest.raises(ValueError, match=r"xyz.csv:2"):
        spatial.positions_from_csv(csv, NAMES)


def test_exif_gps(tmp_path):
    for i in range(3):
        im = Image.fromarray(np.zeros((40, 40, 3), np.uint8))
        exif = im.getexif()
        exif[0x8825] = {1: "N", 2: (30.0, 10.0, 15.0 + i), 3: "W", 4: (98.0, 5.0, 24.0), 6: 400.0}
        im.save(tmp_path / f"g{i}.jpg", exif=exif)
    lat, lon, alt = spatial.read_exif_gps(tmp_path / "g1.jpg")
    assert lat == pytest.approx(30 + 10 / 60 + 16 / 3600) and lon < 0 and alt == 400
    pos = spatial.positions_from_exif(tmp_path, ["g0.jpg", "g1.jpg", "g2.jpg"])
    assert np.linalg.norm(pos[1] - pos[0]) == pytest.approx(30.9, abs=0.2)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "nogps.jpg")
    with pytest.raises(ValueError, match="nogps.jpg: no GPS"):
        spatial.positions_from_exif(tmp_path, ["g0.jpg", "nogps.jpg"])


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    opts = pycolmap.SyntheticDatasetOptions()
    opts.num_rigs, opts.num_cameras_per_rig, opts.num_frames_per_rig = 1, 1, 8
    opts.num_points3D, opts.track_length = 300, 3
    rec = pycolmap.synthesize_dataset(opts)
    path = tmp_path_factory.mktemp("model")
    rec.write(str(path))
    return rec, path


def test_covisibility_and_pose_prior(synthetic_model, tmp_path):
    rec, path = synthetic_model
    names = sorted(im.name for im in rec.images.values())
    got = list(select.covisibility(rec, num=2, names=names))
    assert got and all(a in names and b in names for a, b in got)
    # every chosen partner shares 3D points with its image
    shared = {}
    for p in rec.points3D.values():
        ims = sorted(rec.images[e.image_id].name for e in p.track.elements)
        for i in range(len(ims)):
            for j in range(i + 1, len(ims)):
                shared[(ims[i], ims[j])] = shared.get((ims[i], ims[j]), 0) + 1
    assert all(shared.get(p, 0) > 0 for p in got)
    out = rm_pairs.main(None, tmp_path / "p.txt", "pose", num_pairs=2, image_list=names,
                        prior_model=path)
    assert len(read_pairs(out, names)) >= len(names)


def test_pairs_file_round_trip_and_validation(tmp_path):
    p = tmp_path / "pairs.txt"
    write_pairs(p, [("a.jpg", "sub/b.jpg"), ("sub/b.jpg", "a.jpg"), ("a.jpg", "c.jpg")])
    assert read_pairs(p, ["a.jpg", "sub/b.jpg", "c.jpg"]) == [("a.jpg", "sub/b.jpg"), ("a.jpg", "c.jpg")]
    cases = {
        "a.jpg ../etc/passwd\n": r"pairs.txt:1: unsafe image name",
        "# c\na.jpg /abs.jpg\n": r"pairs.txt:2: unsafe image name",
        "a.jpg c.jpg\na.jpg zzz.jpg\n": r"pairs.txt:2: unknown image 'zzz.jpg'",
        "a.jpg c.jpg x.jpg\n": r"pairs.txt:1: expected 'name0 name1'",
        "\n# only comments\n": r"no pairs",
    }
    for text, msg in cases.items():
        p.write_text(text)
        with pytest.raises(ValueError, match=msg):
            read_pairs(p, ["a.jpg", "c.jpg"])
    with pytest.raises(FileNotFoundError, match="no such pairs file"):
        read_pairs(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="spaces"):
        write_pairs(tmp_path / "s.txt", [("a b.jpg", "c.jpg")])


def test_main_rejects_bad_method_and_too_few_images(tmp_path):
    with pytest.raises(ValueError, match="unknown pairing method"):
        rm_pairs.main(None, tmp_path / "p.txt", "nope", image_list=NAMES)
    with pytest.raises(ValueError, match="at least 2 images"):
        rm_pairs.main(None, tmp_path / "p.txt", "exhaustive", image_list=NAMES[:1])
