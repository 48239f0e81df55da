"""Sparse matches from a dense warp: certainty-weighted, spatially balanced, mutual-checked."""

import torch
import torch.nn.functional as F

from ..coords import normalize, pixel_grid


def _candidates(warp, cert, warp_back, mutual, mutual_px, min_certainty, cell):
    """One direction of one pair. warp H x W x 2 into the other image (Ho x Wo via warp_back
    Ho x Wo x 2) -> (points N x 2, targets N x 2, certainty N, log sampling weight N)."""
    h, w = cert.shape
    ho, wo = warp_back.shape[:2]
    pts = pixel_grid(h, w, device=warp.device, dtype=warp.dtype)
    ok = torch.isfinite(warp).all(-1) & (cert > min_certainty)
    ok &= (warp[..., 0] > -0.5) & (warp[..., 0] < wo - 0.5) & (warp[..., 1] > -0.5) & (warp[..., 1] < ho - 0.5)
    if mutual:
        grid = normalize(torch.nan_to_num(warp), (wo, ho))[None]
        back = F.grid_sample(warp_back.permute(2, 0, 1)[None], grid, mode="bilinear",
                             padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
        ok &= (back - pts).norm(dim=-1) < mutual_px
    weight = torch.where(ok, cert, torch.zeros_like(cert))
    # Spatial balance: divide by the sqrt of the certainty mass of the pixel's grid cell, so
    # a large confident region gets more matches than a small one, but not proportionally.
    mass = F.avg_pool2d(weight[None, None], cell, cell, ceil_mode=True)
    mass = F.interpolate(mass, scale_factor=cell, mode="nearest")[0, 0, :h, :w]
    logw = torch.log(weight) - 0.5 * torch.log(mass.clamp(min=1e-12))
    return pts.reshape(-1, 2), warp.reshape(-1, 2), cert.reshape(-1), logw.reshape(-1)


def sample_matches(out, num=5000, mutual=True, mutual_px=3.0, min_certainty=0.05, cell=32, seed=0):
    """Sample up to `num` matches per pair from both warp directions of a model output.

    out: model output with `warp0` B x H0 x W0 x 2, `certainty0` B x H0 x W0 and twins.
    Returns a list of B dicts: `keypoints0`, `keypoints1` N x 2 float32 pixels (pixel-centre
    convention), `scores` N (certainty), N <= num (fewer when fewer pixels qualify).
    Deterministic: Gumbel top-k with a generator seeded by `seed`, the same for every item,
    so a pair gives the same matches whatever batch it is in.
    """
    results = []
    for b in range(out["warp0"].shape[0]):
        w0, c0 = out["warp0"][b].float(), out["certainty0"][b].float()
        w1, c1 = out["warp1"][b].float(), out["certainty1"][b].float()
        p0, q0, s0, l0 = _candidates(w0, c0, w1, mutual, mutual_px, min_certainty, cell)
        p1, q1, s1, l1 = _candidates(w1, c1, w0, mutual, mutual_px, min_certainty, cell)
        kp0 = torch.cat([p0, q1])
        kp1 = torch.cat([q0, p1])
        scores, logw = torch.cat([s0, s1]), torch.cat([l0, l1])
        gen = torch.Generator(device=logw.device).manual_seed(seed)
        u = torch.rand(logw.shape, generator=gen, device=logw.device).clamp(1e-12, 1 - 1e-7)
        keys = logw - torch.log(-torch.log(u))
        n = min(num, int(torch.isfinite(logw).sum()))
        idx = keys.topk(n).indices
        results.append({"keypoints0": kp0[idx], "keypoints1": kp1[idx], "scores": scores[idx]})
    return results
