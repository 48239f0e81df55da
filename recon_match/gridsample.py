"""Track-friendly match sampling: the same anchor pixels of an image in all of its pairs.

A random sample of a dense warp picks different pixels of image A in pair (A, B) than in
(A, C), so the two pairs rarely observe the same point of A and tracks stay short. Here
each direction of a pair takes its matches at anchor pixels on a fixed sub-grid (`stride`
network px) of the source image, ranked by a fixed per-pixel priority, and keeps those that
pass the certainty, bounds and (optional) mutual forward-backward checks, up to `num / 2`;
each match says whether the backward warp agrees (`consistent`), the engine's measure of how
well a pair matched even when inconsistent matches are kept. The
anchors an image uses depend only on the image and its covisible region, never on the
pair order or on which side of the pair it is, so an anchor seen in k views gives a track
of k + 1 observations before any quantization merging.
"""

import torch
import torch.nn.functional as F

from .coords import normalize, pixel_grid, sq_dist


def _priority(h, w, device):
    """A fixed pseudo-random priority per pixel position (a hash of x and y)."""
    g = pixel_grid(h, w, device=device, dtype=torch.float64)
    x = torch.sin(g[..., 0] * 12.9898 + g[..., 1] * 78.233) * 43758.5453
    return x - torch.floor(x)


CONSISTENT_PX = 3.0  # forward-backward distance (network px) of a `consistent` match


def _direction(warp, cert, warp_back, stride, num, mutual_px, min_certainty):
    """Anchors of one image with their targets: (anchors N x 2, targets N x 2, scores N,
    consistent N, affine N x 2 x 2: the warp's Jacobian at the anchors)."""
    h, w = cert.shape
    ho, wo = warp_back.shape[:2]
    off = stride // 2
    sub_w, sub_c = warp[off::stride, off::stride], cert[off::stride, off::stride]
    pts = pixel_grid(h, w, device=warp.device, dtype=warp.dtype)[off::stride, off::stride]
    prio = _priority(h, w, warp.device)[off::stride, off::stride]
    ok = torch.isfinite(sub_w).all(-1) & torch.isfinite(sub_c) & (sub_c > min_certainty)
    ok &= (sub_w[..., 0] > -0.5) & (sub_w[..., 0] < wo - 0.5)
    ok &= (sub_w[..., 1] > -0.5) & (sub_w[..., 1] < ho - 0.5)
    grid = normalize(torch.nan_to_num(sub_w), (wo, ho))[None]
    back = F.grid_sample(warp_back.permute(2, 0, 1)[None], grid, mode="bilinear",
                         padding_mode="border", align_corners=False)[0].permute(1, 2, 0)
    err = sq_dist(back, pts)
    if mutual_px is not None:
        ok &= err < mutual_px ** 2
    idx = torch.nonzero(ok.reshape(-1))[:, 0]
    keep = idx[prio.reshape(-1)[idx].argsort(descending=True)[:num]]
    return (pts.reshape(-1, 2)[keep], sub_w.reshape(-1, 2)[keep], sub_c.reshape(-1)[keep],
            (err < CONSISTENT_PX ** 2).reshape(-1)[keep], _jacobian(sub_w, stride)[keep])


JACOBIAN_SPAN = 2  # grid points each side of the differences: the warp is noisy per pixel


def _jacobian(warp, stride):
    """d warp / d (x, y) of an h x w x 2 warp sampled every `stride` px: differences across
    +-JACOBIAN_SPAN grid points (fewer at the borders; NaN near non-finite values):
    (h w) x 2 x 2."""
    def diff(dim):
        n = warp.shape[dim]
        i = torch.arange(n, device=warp.device)
        lo, hi = (i - JACOBIAN_SPAN).clamp(min=0), (i + JACOBIAN_SPAN).clamp(max=n - 1)
        step = ((hi - lo) * stride).clamp(min=1).to(warp.dtype)
        d = warp.index_select(dim, hi) - warp.index_select(dim, lo)
        return d / (step[:, None, None] if dim == 0 else step[None, :, None])

    d_dx, d_dy = diff(1), diff(0)
    return torch.stack([d_dx, d_dy], -1).reshape(-1, 2, 2)


@torch.no_grad()
def sample_grid(out, num: int = 5000, stride: int = 4, mutual_px: float | None = 3.0,
                min_certainty: float = 0.05):
    """Matches at fixed anchor pixels of both images of each pair in a model output.

    out: `warp0` B x H0 x W0 x 2 (pixels of image1), `certainty0` B x H0 x W0 and twins.
    Returns a list of B dicts `keypoints0`, `keypoints1` (N x 2 pixels), `scores` N,
    `anchor0` N bool (True where keypoints0 is the anchor, False where keypoints1 is),
    `consistent` N bool (the other direction's warp comes back within CONSISTENT_PX) and
    `affine` N x 2 x 2, the local warp from the anchor's image to the other one (network
    px per network px; NaN where the warp around the anchor is not finite).
    """
    results = []
    for b in range(out["warp0"].shape[0]):
        w0, c0 = out["warp0"][b].float(), out["certainty0"][b].float()
        w1, c1 = out["warp1"][b].float(), out["certainty1"][b].float()
        a0, t0, s0, k0, j0 = _direction(w0, c0, w1, stride, num // 2, mutual_px, min_certainty)
        a1, t1, s1, k1, j1 = _direction(w1, c1, w0, stride, num - num // 2, mutual_px,
                                        min_certainty)
        results.append({"keypoints0": torch.cat([a0, t1]), "keypoints1": torch.cat([t0, a1]),
                        "scores": torch.cat([s0, s1]), "consistent": torch.cat([k0, k1]),
                        "affine": torch.cat([j0, j1]),
                        "anchor0": torch.cat([torch.ones(len(a0), dtype=torch.bool),
                                              torch.zeros(len(a1), dtype=torch.bool)])})
    return results
