"""Sparse matches from a dense warp: certainty-weighted, spatially balanced, mutual-checked."""

import torch
import torch.nn.functional as F

from ..coords import normalize, pixel_grid, sq_dist


def _candidates(warp, cert, warp_back, stride, size, size_other, opts):
    """One direction of one pair, from a field at the pixel centres of a grid of `stride`.

    warp: h x w x 2 (input px of the other image), cert: h x w, warp_back: the other
    direction's field (same stride); size, size_other: (W, H) input sizes (unpadded).
    Returns (points N x 2, targets N x 2, certainty N, log sampling weight N; -inf = never).
    """
    h, w = cert.shape
    hb, wb = warp_back.shape[:2]
    (wi, hi), (wo, ho) = size, size_other
    pts = (pixel_grid(h, w, device=warp.device, dtype=warp.dtype) + 0.5) * stride - 0.5
    ok = torch.isfinite(warp).all(-1) & (cert > opts["min_certainty"])
    ok &= (pts[..., 0] < wi - 0.5) & (pts[..., 1] < hi - 0.5)  # not in the padding
    ok &= (warp[..., 0] > -0.5) & (warp[..., 0] < wo - 0.5) & (warp[..., 1] > -0.5) & (warp[..., 1] < ho - 0.5)
    if opts["mutual"]:
        grid = normalize(torch.nan_to_num(warp), (wb * stride, hb * stride))[None]
        back = F.grid_sample(warp_back.permute(2, 0, 1)[None], grid, mode="bilinear",
                             padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
        ok &= sq_dist(back, pts) < opts["mutual_px"] ** 2
    weight = torch.where(ok, cert, torch.zeros_like(cert))
    # Spatial balance: divide by the sqrt of the certainty mass of the pixel's grid cell, so
    # a large confident region gets more matches than a small one, but not proportionally.
    k = max(1, opts["cell"] // stride)
    mass = F.avg_pool2d(weight[None, None], k, k, ceil_mode=True)
    mass = F.interpolate(mass, scale_factor=k, mode="nearest")[0, 0, :h, :w]
    logw = torch.log(weight) - 0.5 * torch.log(mass.clamp(min=1e-12))
    return pts.reshape(-1, 2), warp.reshape(-1, 2), cert.reshape(-1), logw.reshape(-1)


def _fields(out, b, i):
    """(warp, certainty, stride) of direction i: the 1/2-resolution level when present (the
    full-resolution warp is only its bilinear upsampling, at 4x the cost), else full res."""
    if f"warp{i}_fine" in out:
        return out[f"warp{i}_fine"][b].float(), torch.sigmoid(out[f"logit{i}_fine"][b].float()), 2
    return out[f"warp{i}"][b].float(), out[f"certainty{i}"][b].float(), 1


def sample_matches(out, num=5000, mutual=True, mutual_px=3.0, min_certainty=0.05, cell=32, seed=0):
    """Sample up to `num` matches per pair from both warp directions of a model output.

    out: model output with `warp0` B x H0 x W0 x 2, `certainty0` B x H0 x W0 and twins (and,
    from the model, the 1/2-resolution `warp0_fine`/`logit0_fine`, which are used instead).
    Returns a list of B dicts: `keypoints0`, `keypoints1` N x 2 float32 pixels (pixel-centre
    convention), `scores` N (certainty), N <= num (fewer when fewer pixels qualify).
    Deterministic: Gumbel top-k with a generator seeded by `seed`, the same for every item,
    so a pair gives the same matches whatever batch it is in.
    """
    opts = {"mutual": mutual, "mutual_px": mutual_px, "min_certainty": min_certainty, "cell": cell}
    sizes = [(out[f"warp{i}"].shape[2], out[f"warp{i}"].shape[1]) for i in (0, 1)]
    results = []
    for b in range(out["warp0"].shape[0]):
        (w0, c0, s0), (w1, c1, s1) = _fields(out, b, 0), _fields(out, b, 1)
        p0, q0, sc0, l0 = _candidates(w0, c0, w1, s0, sizes[0], sizes[1], opts)
        p1, q1, sc1, l1 = _candidates(w1, c1, w0, s1, sizes[1], sizes[0], opts)
        kp0 = torch.cat([p0, q1])
        kp1 = torch.cat([q0, p1])
        scores, logw = torch.cat([sc0, sc1]), torch.cat([l0, l1])
        gen = torch.Generator(device=logw.device).manual_seed(seed)
        u = torch.rand(logw.shape, generator=gen, device=logw.device).clamp(1e-12, 1 - 1e-7)
        keys = logw - torch.log(-torch.log(u))
        n = min(num, int(torch.isfinite(logw).sum()))
        idx = keys.topk(n).indices
        results.append({"keypoints0": kp0[idx], "keypoints1": kp1[idx], "scores": scores[idx]})
    return results
