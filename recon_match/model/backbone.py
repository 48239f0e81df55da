"""Per-image CNN backbone: one pass per image, features reusable across all its pairs.

GroupNorm instead of BatchNorm: statistics are per image, so a pair gives the same result
in a batch of 1 or of 4 and train/eval behave alike.
"""

import torch
from torch import nn


def _norm(c):
    return nn.GroupNorm(min(8, c // 4), c)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a (strided) shortcut."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = _norm(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))

    def forward(self, x):
        y = torch.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class Backbone(nn.Module):
    """Images B x 3 x H x W in [0, 1] (H, W multiples of 16) -> feature pyramid.

    Returns a dict: `fine` B x dims[0] x H/2 x W/2, `mid` B x dims[2] x H/8 x W/8,
    `coarse` B x dims[3] x H/16 x W/16.
    """

    def __init__(self, dims=(24, 48, 128, 192), blocks=(1, 1, 1, 2)):
        super().__init__()
        d2, d4, d8, d16 = dims
        self.stem = nn.Sequential(nn.Conv2d(3, d2, 3, 2, 1, bias=False), _norm(d2), nn.ReLU())
        self.block2 = self._stage(d2, d2, 1, blocks[0])
        self.block4 = self._stage(d2, d4, 2, blocks[1])
        self.block8 = self._stage(d4, d8, 2, blocks[2])
        self.block16 = self._stage(d8, d16, 2, blocks[3])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _stage(cin, cout, stride, n):
        return nn.Sequential(ResBlock(cin, cout, stride), *(ResBlock(cout, cout) for _ in range(n - 1)))

    def forward(self, images):
        x = (images - self.mean) / self.std
        f2 = self.block2(self.stem(x))
        f8 = self.block8(self.block4(f2))
        f16 = self.block16(f8)
        return {"fine": f2, "mid": f8, "coarse": f16}
