"""Quantization of hand-made dense matches into shared keypoints (real h5 files)."""

import h5py
import numpy as np
import pytest

from recon_match.h5io import names_to_pair, read_keypoints, read_matches
from recon_match.quantize import Tracks, assign_pair, choose_keypoints, KeypointIndex, quantize

SIZE = (120, 90)


def run(tmp_path, pairs, raw, conf=None, sizes=None, **kw):
    feats, matches = tmp_path / "features.h5", tmp_path / "matches.h5"
    sizes = sizes or {n: SIZE for p in pairs for n in p}
    with h5py.File(feats, "w") as ff, h5py.File(matches, "w") as fm:
        stats = quantize(pairs, lambda i: raw[i], sizes, ff, fm, conf=conf, progress=False, **kw)
    return feats, matches, stats


def match(kp0, kp1, scores=None):
    kp0, kp1 = np.asarray(kp0, np.float32), np.asarray(kp1, np.float32)
    s = np.ones(len(kp0), np.float32) if scores is None else np.asarray(scores, np.float32)
    return {"keypoints0": kp0, "keypoints1": kp1, "scores": s}


def test_keypoints_shared_across_pairs_give_long_tracks(tmp_path):
    # 3D points seen in a, b, c at slightly different (sub-cell) positions per pair
    rng = np.random.default_rng(0)
    pa = np.stack(np.meshgrid(np.arange(10, 110, 12.0), np.arange(10, 80, 12.0)), -1).reshape(-1, 2)
    pb, pc = pa + [3.0, 1.0], pa + [-2.0, 2.0]
    jit = lambda p: p + rng.uniform(-0.4, 0.4, p.shape)  # noqa: E731
    pairs = [("a.jpg", "b.jpg"), ("a.jpg", "c.jpg"), ("b.jpg", "c.jpg")]
    raw = [match(jit(pa), jit(pb)), match(jit(pa), jit(pc)), match(jit(pb), jit(pc))]
    feats, mfile, stats = run(tmp_path, pairs, raw, {"cell_size": 4, "max_error": 4})
    n = len(pa)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        assert len(read_keypoints(feats, name)) == n
    ab, _ = read_matches(mfile, "a.jpg", "b.jpg")
    ac, _ = read_matches(mfile, "a.jpg", "c.jpg")
    bc, _ = read_matches(mfile, "b.jpg", "c.jpg")
    assert len(ab) == len(ac) == len(bc) == n
    # the keypoint of a point in b is the same one whether reached from a or from c
    b_from_a = dict(ab)
    c_from_a = dict(ac)
    c_from_b = dict(bc)
    assert all(c_from_b[b_from_a[ka]] == c_from_a[ka] for ka in b_from_a)
    assert stats["num_tracks"] == n and stats["mean_track_length"] == pytest.approx(3.0)


def test_subpixel_position_is_score_weighted_mean():
    obs = [(np.array([[10.3, 20.7]]), np.array([1.0])), (np.array([[10.7, 20.3]]), np.array([3.0]))]
    kpts, votes = choose_keypoints(obs, SIZE, cell=4, max_kps=None, position="mean")
    np.testing.assert_allclose(kpts, [[10.6, 20.4]], atol=1e-5)
    np.testing.assert_allclose(votes, [4.0])
    kpts, _ = choose_keypoints(obs, SIZE, cell=4, max_kps=None, position="best")
    np.testing.assert_allclose(kpts, [[10.7, 20.3]], atol=1e-5)


def test_cap_keeps_highest_votes_and_no_duplicates():
    xy = np.stack([np.arange(20) * 6.0 + 1.5, np.full(20, 41.0)], -1)
    scores = np.arange(1, 21, dtype=np.float64)
    obs = [(xy, scores), (xy + 0.5, scores)]  # same cells voted twice
    kpts, votes = choose_keypoints(obs, SIZE, cell=4, max_kps=5)
    assert len(kpts) == 5
    np.testing.assert_allclose(np.sort(votes), 2 * scores[-5:])
    assert len(np.unique(np.round(kpts, 3), axis=0)) == len(kpts)


def test_many_to_one_keeps_best():
    k = np.array([[10.0, 10.0], [30.0, 10.0], [50.0, 10.0]])
    idx0 = KeypointIndex(k, np.ones(3), SIZE, 4)
    idx1 = KeypointIndex(k, np.ones(3), SIZE, 4)
    # matches 0->0 (0.2) and 1->0 (0.9) collide on keypoint 0 of image 1; 2->2 is alone;
    # 2->1 (0.1) collides with 2->2 (0.5) on keypoint 2 of image 0
    m = match([[10, 10], [30, 10], [50, 10], [50, 10]], [[10, 10], [10, 11], [50, 10], [30, 10]],
              [0.2, 0.9, 0.5, 0.1])
    m0, s0 = assign_pair(m, idx0, idx1, 2.0, 2.0, n0=3)
    assert m0.tolist() == [-1, 0, 2]
    np.testing.assert_allclose(s0[[1, 2]], [0.9, 0.5])


def test_far_matches_are_dropped_and_nan_filtered(tmp_path):
    pairs = [("a.jpg", "b.jpg")]
    raw = [match([[10, 10], [40, 40], [np.nan, 3], [60, 60]], [[10, 10], [40, 40], [5, 5], [np.inf, 1]])]
    feats, mfile, stats = run(tmp_path, pairs, raw, {"cell_size": 4, "max_error": 1})
    assert np.isfinite(read_keypoints(feats, "a.jpg")).all()
    assert len(read_keypoints(feats, "a.jpg")) == 2
    matches, scores = read_matches(mfile, "a.jpg", "b.jpg")
    assert len(matches) == 2 and np.isfinite(scores).all()


def test_zero_match_pair_and_outside_points(tmp_path):
    pairs = [("a.jpg", "b.jpg"), ("a.jpg", "c.jpg")]
    raw = [match(np.zeros((0, 2)), np.zeros((0, 2))), match([[500, 500]], [[5, 5]])]
    feats, mfile, stats = run(tmp_path, pairs, raw)
    with h5py.File(mfile) as f:  # as hloc reads it: every pair has a group
        for n0, n1 in pairs:
            m0 = f[names_to_pair(n0, n1)]["matches0"][()]
            assert m0.dtype == np.int32 and (m0 == -1).all()
    assert stats["mean_track_length"] == 0.0


def test_fixed_keypoints_are_kept(tmp_path):
    ref = np.array([[10.0, 10.0], [30.5, 20.25]], np.float32)
    pairs = [("q.jpg", "ref.jpg")]
    raw = [match([[11, 11], [31, 21]], [[10.4, 10.2], [30.0, 20.0]], [0.5, 0.7])]
    feats, mfile, _ = run(tmp_path, pairs, raw, {"cell_size": 4, "max_error": 2},
                          fixed_keypoints={"ref.jpg": (ref, np.ones(2))})
    np.testing.assert_array_equal(read_keypoints(feats, "ref.jpg"), ref)
    matches, _ = read_matches(mfile, "q.jpg", "ref.jpg")
    assert sorted(matches[:, 1].tolist()) == [0, 1]


def test_conf_is_validated(tmp_path):
    with pytest.raises(ValueError, match="unknown quantization option"):
        run(tmp_path, [("a", "b")], [match([[1, 1]], [[1, 1]])], {"cellsize": 3})
    with pytest.raises(ValueError, match="max_error"):
        run(tmp_path, [("a", "b")], [match([[1, 1]], [[1, 1]])], {"cell_size": 2, "max_error": 3})


def test_tracks_union_find():
    t = Tracks({"a": 3, "b": 3, "c": 3})
    t.add("a", "b", np.array([1, -1, 2], np.int32))
    t.add("b", "c", np.array([-1, 0, 1], np.int32))
    t.add("c", "a", np.array([2, -1, -1], np.int32))
    # tracks: {a0, b1, c0, a2, b2, c1}? a0-b1-c0-a2-b2-c1 joined through c0->a2 -> one of 6
    assert t.stats() == {"num_tracks": 1, "mean_track_length": 6.0}
