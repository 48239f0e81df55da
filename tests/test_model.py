"""DenseMatcher: output contract, padding, batch equivalence, determinism, sampling."""

import pytest
import torch

from recon_match.coords import pixel_grid
from recon_match.model import DenseMatcher
from recon_match.model.sample import sample_matches


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DenseMatcher().eval()


def _images(b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g)


def test_output_contract_with_padding(model):
    h0, w0, h1, w1 = 50, 70, 64, 48  # not multiples of 16, different sizes
    with torch.no_grad():
        out = model({"image0": _images(2, h0, w0), "image1": _images(2, h1, w1, 1)})
    assert out["warp0"].shape == (2, h0, w0, 2) and out["warp0"].dtype == torch.float32
    assert out["certainty0"].shape == (2, h0, w0)
    assert out["warp1"].shape == (2, h1, w1, 2) and out["certainty1"].shape == (2, h1, w1)
    assert out["warp0_coarse"].shape == (2, 4, 5, 2) and out["certainty0_coarse"].shape == (2, 4, 5)
    assert out["warp1_coarse"].shape == (2, 4, 3, 2)
    for k in ("warp0", "warp1", "certainty0", "certainty1", "certainty0_coarse"):
        assert torch.isfinite(out[k]).all(), k
    for k in ("certainty0", "certainty1", "certainty0_coarse", "certainty1_coarse"):
        assert out[k].min() >= 0 and out[k].max() <= 1
    # coarse warps point at (or between) cell centres of image1, in input pixels
    assert out["warp0_coarse"][..., 0].max() <= w1 + 16 and out["warp0_coarse"].min() >= -16


def test_batch_equivalence_and_determinism(model):
    im0, im1 = _images(4, 48, 64), _images(4, 48, 64, 1)
    with torch.no_grad():
        batched = model({"image0": im0, "image1": im1})
        again = model({"image0": im0, "image1": im1})
        single = model({"image0": im0[2:3], "image1": im1[2:3]})
    for k in ("warp0", "certainty0", "warp1", "certainty1"):
        assert torch.equal(batched[k], again[k]), f"eval is not deterministic for {k}"
        assert torch.allclose(batched[k][2:3], single[k], atol=1e-3, rtol=1e-4), k


def test_extract_then_match_equals_forward(model):
    im0, im1 = _images(1, 48, 64), _images(1, 48, 64, 1)
    with torch.no_grad():
        full = model({"image0": im0, "image1": im1})
        f0, f1 = model.extract(im0), model.extract(im1)
        cached = model.match(f0, f1)
        desc = model.global_descriptor(f0)
    assert torch.allclose(full["warp0"], cached["warp0"], atol=1e-3)
    assert desc.shape == (1, 192) and torch.allclose(desc.norm(dim=-1), torch.ones(1), atol=1e-5)


def _identity_output(h, w, cert):
    grid = pixel_grid(h, w)[None]
    return {"warp0": grid.clone(), "certainty0": cert[None], "warp1": grid.clone(), "certainty1": cert[None]}


def test_sample_balanced_certain_mutual():
    h, w = 64, 96
    cert = torch.ones(h, w)
    cert[:, : w // 2] = 0.0  # left half uncertain: nothing may come from there
    out = _identity_output(h, w, cert)
    res = sample_matches(out, num=500, cell=16, seed=3)[0]
    k0, k1 = res["keypoints0"], res["keypoints1"]
    assert k0.shape == (500, 2) and k1.shape == (500, 2) and res["scores"].shape == (500,)
    assert torch.allclose(k0, k1) and torch.isfinite(k0).all()
    assert (k0[:, 0] >= w // 2).all()
    # spread over the certain half: every 16x16 cell there gets matches
    cells = set(map(tuple, (k0 // 16).long().tolist()))
    assert len(cells) == (h // 16) * (w // 2 // 16)
    again = sample_matches(out, num=500, cell=16, seed=3)[0]
    assert torch.equal(again["keypoints0"], k0)


def test_sample_mutual_check_rejects_inconsistent_warps():
    h, w = 32, 32
    out = _identity_output(h, w, torch.ones(h, w))
    out["warp1"] = out["warp1"] + 10.0  # back-warp disagrees by 14 px everywhere
    assert sample_matches(out, num=100, mutual=True)[0]["keypoints0"].shape[0] == 0
    assert sample_matches(out, num=100, mutual=False)[0]["keypoints0"].shape[0] == 100


def test_model_sample_on_network_output(model):
    with torch.no_grad():
        out = model({"image0": _images(2, 48, 64), "image1": _images(2, 48, 64, 1)})
    res = model.sample(out, num=50, mutual=False)
    assert len(res) == 2
    for r in res:
        assert r["keypoints0"].shape[0] <= 50 and torch.isfinite(r["keypoints1"]).all()
        assert (r["keypoints1"][:, 0] > -0.5).all() and (r["keypoints1"][:, 0] < 63.5).all()


def test_unknown_model_option_is_rejected():
    with pytest.raises(ValueError, match=r"unknown model option\(s\) \['layerz'\]"):
        DenseMatcher({"layerz": 2})


@pytest.mark.parametrize("num", [40, 3000])  # sparse points and a dense grid's worth
def test_local_correlation_is_bilinear_sampling(num):
    """The neighbour-score shortcut equals bilinear sampling of f1 at xy + offsets, and so
    do its gradients (the trainer back-propagates through it)."""
    import torch.nn.functional as F

    from recon_match.coords import normalize
    from recon_match.model.refine import local_correlation

    g = torch.Generator().manual_seed(0)
    f1 = torch.randn(2, 16, 12, 15, generator=g).requires_grad_()
    q = torch.randn(num, 16, generator=g).requires_grad_()
    xy = torch.rand(num, 2, generator=g) * torch.tensor([19.0, 16.0]) - 2  # some outside
    bidx = torch.randint(0, 2, (num,), generator=g)
    r = 1
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    oy, ox = torch.meshgrid(d, d, indexing="ij")
    pts = xy[:, None] + torch.stack([ox.reshape(-1), oy.reshape(-1)], -1)  # N x K x 2
    grid = normalize(pts, (15, 12))[:, None]  # N x 1 x K x 2, each point on its own map
    feats = F.grid_sample(f1[bidx], grid, align_corners=False, padding_mode="zeros")[:, :, 0]
    ref = (feats * q[:, :, None]).sum(1) / 4.0
    out = local_correlation(q, f1, xy, bidx, r)
    assert torch.allclose(out, ref, atol=1e-4)
    w = torch.randn(out.shape, generator=g)
    grads = torch.autograd.grad((out * w).sum(), (q, f1))
    ref_grads = torch.autograd.grad((ref * w).sum(), (q, f1))
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4)


def test_rope_scores_depend_on_relative_offsets_only():
    """Self-attention scores after RoPE are invariant to shifting both tokens on the grid,
    and the rotation keeps norms (what lets one set of weights run at any image size)."""
    from recon_match.model.attention import apply_rope, rope_rotation

    g = torch.Generator().manual_seed(0)
    h, w, d = 6, 7, 32
    rot = rope_rotation(h, w, d)
    q = torch.randn(1, 1, 1, d, generator=g).expand(1, 1, h * w, d)
    k = torch.randn(1, 1, 1, d, generator=g).expand(1, 1, h * w, d)
    qr, kr = apply_rope(q, rot)[0, 0], apply_rope(k, rot)[0, 0]
    assert torch.allclose(qr.norm(dim=-1), q[0, 0].norm(dim=-1), atol=1e-5)
    idx = lambda y, x: y * w + x
    s0 = qr[idx(1, 2)] @ kr[idx(3, 1)]   # offset (+2, -1)
    s1 = qr[idx(3, 5)] @ kr[idx(5, 4)]   # the same offset elsewhere
    s2 = qr[idx(1, 2)] @ kr[idx(3, 3)]   # another offset
    assert torch.allclose(s0, s1, atol=1e-4) and not torch.allclose(s0, s2, atol=1e-2)
