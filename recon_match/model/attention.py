"""Self + cross attention over coarse tokens of two images (LoFTR / IMD-style interaction).

Positions enter through 2D rotary embeddings (RoPE) in self-attention only: RoPE makes
attention depend on *relative* offsets in coarse cells, so the same weights work at any
resolution; cross-attention gets no positions (positions of two images are unrelated).
"""

import torch
import torch.nn.functional as F
from torch import nn


def rope_angles(h, w, head_dim, theta=100.0, device=None):
    """Angles N x head_dim/2 for an h x w token grid (row-major); x then y halves."""
    n_freq = head_dim // 4
    freqs = theta ** (-torch.arange(n_freq, device=device, dtype=torch.float32) / n_freq)
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    ax = xs.reshape(-1, 1) * freqs
    ay = ys.reshape(-1, 1) * freqs
    return torch.cat([ax, ay], 1)


def apply_rope(x, angles):
    """Rotate pairs of channels of x (B x heads x N x head_dim) by `angles` (N x head_dim/2)."""
    x2 = x.unflatten(-1, (-1, 2))
    cos, sin = angles.cos(), angles.sin()
    a, b = x2[..., 0], x2[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)


class AttentionBlock(nn.Module):
    """Pre-norm multi-head attention of `x` onto `src`, then an MLP; residual both times."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def _split(self, t):
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x, src, angles=None):
        """x: B x N x D, src: B x M x D; angles given only for self-attention (N == M)."""
        q = self._split(self.q(self.norm_q(x)))
        k, v = self._split(self.kv(self.norm_kv(src))).chunk(2, dim=-1)
        if angles is not None:
            q, k = apply_rope(q, angles), apply_rope(k, angles)
        y = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(y.transpose(1, 2).flatten(-2))
        return x + self.mlp(self.norm_mlp(x))


class CoarseTransformer(nn.Module):
    """`layers` rounds of (self, cross) attention; both images are updated simultaneously."""

    def __init__(self, dim=128, heads=4, layers=4):
        super().__init__()
        self.self_blocks = nn.ModuleList(AttentionBlock(dim, heads) for _ in range(layers))
        self.cross_blocks = nn.ModuleList(AttentionBlock(dim, heads) for _ in range(layers))
        self.head_dim = dim // heads

    def forward(self, x0, x1, shape0, shape1):
        """x0: B x N0 x D tokens of an h0 x w0 grid (`shape0`), x1 likewise -> updated tokens."""
        a0 = rope_angles(*shape0, self.head_dim, device=x0.device).to(x0.dtype)
        a1 = a0 if tuple(shape1) == tuple(shape0) else rope_angles(*shape1, self.head_dim, device=x1.device).to(x1.dtype)
        for sa, ca in zip(self.self_blocks, self.cross_blocks):
            x0, x1 = sa(x0, x0, a0), sa(x1, x1, a1)
            x0, x1 = ca(x0, x1), ca(x1, x0)
        return x0, x1
