"""Coarse-grid warp from a dual-softmax matrix, and local correlation refinement of a dense warp."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..coords import normalize


def coarse_warp(logp, shape1, stride):
    """Warp of each coarse cell of image0 into image1 from log dual-softmax probabilities.

    logp: B x N0 x N1 (image1 cells row-major on an h1 x w1 grid given by `shape1`).
    Returns warp B x N0 x 2 (input pixels, pixel-centre convention) = probability-weighted
    mean of the 3x3 cells around the best cell, and certainty B x N0 = that 3x3 mass in [0, 1].
    """
    h1, w1 = shape1
    p = logp.detach().exp()
    best = p.argmax(-1)
    by, bx = best // w1, best % w1
    d = torch.arange(-1, 2, device=p.device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    ny = by[..., None] + dy.reshape(-1)
    nx = bx[..., None] + dx.reshape(-1)
    inside = (ny >= 0) & (ny < h1) & (nx >= 0) & (nx < w1)
    idx = ny.clamp(0, h1 - 1) * w1 + nx.clamp(0, w1 - 1)
    pw = p.gather(-1, idx) * inside
    mass = pw.sum(-1)
    w = pw / mass.clamp(min=1e-12)[..., None]
    x = ((nx.to(p.dtype) + 0.5) * stride - 0.5) * w
    y = ((ny.to(p.dtype) + 0.5) * stride - 0.5) * w
    return torch.stack([x.sum(-1), y.sum(-1)], -1), mass.clamp(0, 1)


def upsample_field(field, factor):
    """Bilinear upsampling of a B x C x h x w field by an integer factor (cell-centre aligned)."""
    return F.interpolate(field, scale_factor=factor, mode="bilinear", align_corners=False)


def _neighbour_scores(q, f1, xy, bidx, radius):
    """Dot products of each query with the (2r+2)^2 integer neighbours of floor(xy):
    N x (2r+2) x (2r+2), zeros outside the map.

    A sampled dense-dense product (SDDMM) on a CSR pattern of the neighbours: each score is
    computed in place, without gathering N x (2r+2)^2 x C neighbour features first, which is
    memory-bound on CPU (10x slower forward, 2x slower forward + backward at 640 x 480).
    """
    b, c, h1, w1 = f1.shape
    rows = f1.permute(0, 2, 3, 1).reshape(b * h1 * w1, c)
    base = xy.floor()
    ix, iy = base[:, 0].long(), base[:, 1].long()
    d = torch.arange(-radius, radius + 2, device=q.device)
    y = iy[:, None, None] + d[None, :, None]  # N x n x 1
    x = ix[:, None, None] + d[None, None, :]  # N x 1 x n
    inside = ((x >= 0) & (x < w1) & (y >= 0) & (y < h1)).to(q.dtype)
    # clamping keeps each row's columns sorted (non-decreasing), as CSR expects
    idx = bidx[:, None, None] * (h1 * w1) + y.clamp(0, h1 - 1) * w1 + x.clamp(0, w1 - 1)
    n, k = len(q), (2 * radius + 2) ** 2
    crow = torch.arange(0, n * k + 1, k, device=q.device)
    with warnings.catch_warnings():  # "CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        pattern = torch.sparse_csr_tensor(crow, idx.flatten(), torch.zeros(n * k, device=q.device),
                                          size=(n, len(rows)), check_invariants=False)
        scores = torch.sparse.sampled_addmm(pattern, q.float(), rows.float().T, beta=0.0)
    scores = scores.values().view(n, 2 * radius + 2, 2 * radius + 2).to(q.dtype)
    return scores * inside


def local_correlation(q, f1, xy, bidx, radius):
    """Correlation of query features with the other image's features around given points.

    q: N x C query features; f1: B x C x h1 x w1 feature map; xy: N x 2 positions on that
    map's grid (feature pixels, pixel-centre convention); bidx: N batch index of each point.
    Returns N x K (K = (2r+1)^2, row-major offsets from -r to r) <q, f1(xy + offset)> / sqrt(C),
    with bilinear interpolation and zeros outside the map.

    Bilinear sampling at xy + integer offsets = a fixed bilinear mix of the (2r+2)^2 integer
    neighbours of floor(xy), so the scores of those neighbours are all that is needed.
    """
    c = f1.shape[1]
    grid = _neighbour_scores(q, f1, xy, bidx, radius)
    frac = xy - xy.floor()
    fx, fy = frac[:, 0, None, None], frac[:, 1, None, None]
    top = grid[:, :-1, :-1] * (1 - fx) + grid[:, :-1, 1:] * fx
    bottom = grid[:, 1:, :-1] * (1 - fx) + grid[:, 1:, 1:] * fx
    return ((top * (1 - fy) + bottom * fy) / c ** 0.5).flatten(1)


def warped_correlation(f0, f1, warp, stride, radius):
    """Correlation in the frame of image0: warp f1 once onto image0's grid, then correlate
    each query with the warped features of its (2r+1)^2 neighbours. The candidates are
    therefore warp(p + offset), i.e. a window shaped by the local warp; one grid_sample plus
    K shifted products is ~4x cheaper on CPU than K gathers, which matters at 1/2 resolution.

    f0: B x C x h x w, f1: B x C x h1 x w1 (both at `stride`), warp: B x 2 x h x w (input px)
    -> correlation B x K x h x w and candidate positions B x K x 2 x h x w (input px).
    """
    b, c, h, w = f0.shape
    size1 = (f1.shape[-1] * stride, f1.shape[-2] * stride)
    grid = normalize(warp.permute(0, 2, 3, 1), size1)
    f1w = F.grid_sample(f1, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    r = radius
    f1p = F.pad(f1w, (r, r, r, r))
    wp = F.pad(warp, (r, r, r, r), mode="replicate")
    n = 2 * r + 1
    corr = [(f1p[:, :, dy:dy + h, dx:dx + w] * f0).sum(1) for dy in range(n) for dx in range(n)]
    cand = [wp[:, :, dy:dy + h, dx:dx + w] for dy in range(n) for dx in range(n)]
    return torch.stack(corr, 1) / c ** 0.5, torch.stack(cand, 1)


def gathered_correlation(f0, f1, warp, stride, radius):
    """Correlation with f1 at warp + offsets in image1's own frame (offsets one feature
    pixel apart): exact window, robust to a locally wrong warp; used at 1/8 where it is cheap.
    Same inputs and outputs as `warped_correlation`."""
    b, c, h, w = f0.shape
    q = f0.permute(0, 2, 3, 1).reshape(-1, c)
    xy = (warp.permute(0, 2, 3, 1).reshape(-1, 2) + 0.5) / stride - 0.5
    bidx = torch.arange(b, device=f0.device).repeat_interleave(h * w)
    corr = local_correlation(q, f1, xy, bidx, radius).reshape(b, h, w, -1).permute(0, 3, 1, 2)
    d = torch.arange(-radius, radius + 1, device=f0.device, dtype=warp.dtype) * stride
    oy, ox = torch.meshgrid(d, d, indexing="ij")
    offsets = torch.stack([ox.reshape(-1), oy.reshape(-1)], -1)[None, :, :, None, None]
    return corr, warp[:, None] + offsets


class Refiner(nn.Module):
    """One refinement level: correlate each query feature with the other image's features
    at (2r+1)^2 candidate positions around the current warp (`gathered` or `warped`
    correlation), soft-argmax over the candidates, and let a small head add a residual and
    a certainty logit. `kernel` 3 = conv head, 1 = per-pixel head.
    """

    def __init__(self, radius, hidden, kernel=3, mode="gathered"):
        super().__init__()
        if mode not in ("gathered", "warped"):
            raise ValueError(f"unknown refiner mode {mode!r}")
        self.radius, self.mode, self.kernel = radius, mode, kernel
        k = (2 * radius + 1) ** 2
        pad = kernel // 2
        self.head = nn.Sequential(
            nn.Conv2d(k + 3, hidden, kernel, 1, pad), nn.ReLU(),
            nn.Conv2d(hidden, hidden, kernel, 1, pad), nn.ReLU(),
            nn.Conv2d(hidden, 3, 1))
        # Start as pure soft-argmax with unchanged certainty: the residual is learnt on top.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, f0, f1, warp, logit, stride):
        """f0: B x C x h x w queries, f1: B x C x h1 x w1 (both at `stride`), warp: B x 2 x h x w
        (input px, detached), logit: B x 1 x h x w -> refined warp and certainty logit, same shapes."""
        fn = gathered_correlation if self.mode == "gathered" else warped_correlation
        corr, cand = fn(f0, f1, warp, stride, self.radius)
        prob = torch.softmax(corr * self.scale, 1)
        target = (prob[:, :, None] * cand).sum(1)
        x = torch.cat([corr, (target - warp) / stride, logit], 1)
        out = self.head(x) if self.kernel > 1 else _pointwise(self.head, x)
        return target + out[:, :2] * stride, logit + out[:, 2:]


def _pointwise(head, x):
    """A head of 1x1 convolutions (and ReLUs) as matrix products on channels-last pixels:
    same numbers, ~2x faster on CPU than Conv2d at 1/2 resolution."""
    y = x.permute(0, 2, 3, 1)
    for layer in head:
        y = F.linear(y, layer.weight[:, :, 0, 0], layer.bias) if isinstance(layer, nn.Conv2d) else layer(y)
    return y.permute(0, 3, 1, 2)
