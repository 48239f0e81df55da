"""DenseMatcher: the dense detector-free matcher.

THE CONTRACT (written once, here)
---------------------------------
Inputs: `image0` B x 3 x H0 x W0 and `image1` B x 3 x H1 x W1, float in [0, 1], any size
(padded internally to a multiple of 16 at the bottom/right; outputs are cropped back).

All warps are in PIXELS of the other input image, pixel-centre convention of
`recon_match.coords` ((0, 0) = centre of the top-left pixel), never normalized.

`model.extract(images)` -> per-image features (cacheable, computed once per image):
    `fine` B x 24 x Hp/2 x Wp/2, `mid` B x 128 x Hp/8 x Wp/8, `coarse` B x 192 x Hp/16 x Wp/16,
    `size` LongTensor [H, W] (unpadded input size).
`model.match(feats0, feats1)` and `model({"image0", "image1"})` -> dict:
    `warp0`        B x H0 x W0 x 2   pixel coords in image1 of each image0 pixel centre
    `certainty0`   B x H0 x W0       in [0, 1]: probability that warp0 is right (within ~3 px)
    `warp1`, `certainty1`            the twins from image1 to image0 (B x H1 x W1 ...)
    `warp0_coarse` B x h0 x w0 x 2   at the 1/16 grid (cell centres), still in input pixels
    `certainty0_coarse` B x h0 x w0  dual-softmax mass around the best cell; `..1_coarse` twins
    `coarse_logprob` B x N0 x N1     log dual-softmax over coarse cells (training)
    `warp0_mid`, `logit0_mid`, `warp0_fine`, `logit0_fine` (and 1 twins): the 1/8 and 1/2
        levels, B x h x w x 2 in input pixels and B x h x w certainty logits (training).
`model.sample(out, num=5000, mutual=True)` -> per batch item dict `keypoints0` N x 2,
    `keypoints1` N x 2 (pixels), `scores` N.
`model.global_descriptor(feats)` -> B x 192, L2-normalised (GeM of the coarse features).
"""


import torch
import torch.nn.functional as F
from torch import nn

from .attention import CoarseTransformer
from .backbone import Backbone
from .refine import Refiner, coarse_warp, upsample_field
from .sample import sample_matches
from ..config import merge_conf

STRIDE_COARSE, STRIDE_MID, STRIDE_FINE = 16, 8, 2


class DenseMatcher(nn.Module):
    default_conf = {
        # backbone channels and residual blocks at 1/2, 1/4, 1/8, 1/16: sized so that
        # training on 2 shared CPU cores sees enough pairs (the backbone dominates a step)
        "dims": [24, 48, 128, 192],
        "blocks": [1, 1, 1, 2],
        "coarse_dim": 128,
        "heads": 4,
        "layers": 4,
        "temperature": 0.1,  # dual-softmax temperature
        "mid_radius": 2,  # 5x5 window at 1/8
        "fine_radius": 1,  # 3x3 window at 1/2 (the cost that dominates on CPU)
        "mid_hidden": 64,
        "fine_hidden": 32,
        "sample": {"mutual_px": 3.0, "min_certainty": 0.05, "cell": 32, "seed": 0},
    }

    def __init__(self, conf=None):
        super().__init__()
        self.conf = conf = merge_conf(self.default_conf, conf, "model", nested=("sample",))
        d2, _, d8, d16 = conf["dims"]
        dc = conf["coarse_dim"]
        self.backbone = Backbone(conf["dims"], conf["blocks"])
        self.fine_proj = nn.Conv2d(d2, d2, 1)
        self.mid_proj = nn.Conv2d(d8, d8, 1)
        self.coarse_proj = nn.Linear(d16, dc)
        self.transformer = CoarseTransformer(dc, conf["heads"], conf["layers"])
        self.final_proj = nn.Linear(dc, dc)
        self.cond = nn.Conv2d(dc, d8, 1)  # cross-image context from coarse tokens into 1/8
        self.refine_mid = Refiner(conf["mid_radius"], conf["mid_hidden"], kernel=3)
        self.refine_fine = Refiner(conf["fine_radius"], conf["fine_hidden"], kernel=1, mode="warped")
        # run-time choice, not part of the weights: bfloat16 autocast of the CNN (training on
        # CPUs with AMX/AVX512-BF16: ~1.4x faster steps, same losses to 0.3 %); outputs stay fp32
        self.backbone_bf16 = False

    # ------------------------------------------------------------------ per image
    def extract(self, images):
        """images B x 3 x H x W in [0, 1] -> feature dict (see module docstring)."""
        h, w = images.shape[-2:]
        x = F.pad(images, (0, -w % 16, 0, -h % 16))
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.backbone_bf16):
            f = self.backbone(x)
            f = {"fine": self.fine_proj(f["fine"]), "mid": self.mid_proj(f["mid"]), "coarse": f["coarse"]}
        return {**{k: v.float() for k, v in f.items()}, "size": torch.tensor([h, w])}

    def global_descriptor(self, feats, p=3.0):
        """GeM pooling of the coarse features -> B x 192, unit L2 norm (for retrieval)."""
        x = feats["coarse"].clamp(min=1e-6).pow(p).mean((2, 3)).pow(1.0 / p)
        return F.normalize(x, dim=-1)

    # ------------------------------------------------------------------ per pair
    def _coarse(self, feats0, feats1):
        c0, c1 = feats0["coarse"], feats1["coarse"]
        shape0, shape1 = c0.shape[-2:], c1.shape[-2:]
        x0 = self.coarse_proj(c0.flatten(2).transpose(1, 2))
        x1 = self.coarse_proj(c1.flatten(2).transpose(1, 2))
        x0, x1 = self.transformer(x0, x1, shape0, shape1)
        m0, m1 = self.final_proj(x0), self.final_proj(x1)
        sim = m0 @ m1.transpose(1, 2) / (m0.shape[-1] * self.conf["temperature"])
        logp = sim.log_softmax(2) + sim.log_softmax(1)
        ctx0 = x0.transpose(1, 2).unflatten(2, shape0)
        ctx1 = x1.transpose(1, 2).unflatten(2, shape1)
        return logp, ctx0, ctx1

    def _refine(self, f0, f1, warp, cert):
        """One direction. warp B x 2 x h16 x w16, cert B x 1 x h16 x w16 -> dict of levels."""
        logit = torch.logit(cert.clamp(1e-4, 1 - 1e-4))
        warp, logit = upsample_field(warp, 2), upsample_field(logit, 2)
        warp_mid, logit_mid = self.refine_mid(f0["mid"], f1["mid"], warp, logit, STRIDE_MID)
        up = STRIDE_MID // STRIDE_FINE
        warp, logit = upsample_field(warp_mid.detach(), up), upsample_field(logit_mid, up)
        warp_fine, logit_fine = self.refine_fine(f0["fine"], f1["fine"], warp, logit, STRIDE_FINE)
        return {"mid": (warp_mid, logit_mid), "fine": (warp_fine, logit_fine)}

    def match(self, feats0, feats1):
        """Match extracted features of a batch of pairs -> output dict (module docstring)."""
        logp, ctx0, ctx1 = self._coarse(feats0, feats1)
        shape0, shape1 = ctx0.shape[-2:], ctx1.shape[-2:]
        w0c, c0c = coarse_warp(logp, shape1, STRIDE_COARSE)
        w1c, c1c = coarse_warp(logp.transpose(1, 2), shape0, STRIDE_COARSE)
        f0 = {"mid": feats0["mid"] + upsample_field(self.cond(ctx0), 2), "fine": feats0["fine"]}
        f1 = {"mid": feats1["mid"] + upsample_field(self.cond(ctx1), 2), "fine": feats1["fine"]}
        out = {"coarse_logprob": logp}
        for i, (fa, fb, wc, cc, sa, sha) in enumerate([
                (f0, f1, w0c, c0c, feats0["size"], shape0),
                (f1, f0, w1c, c1c, feats1["size"], shape1)]):
            wc = wc.transpose(1, 2).unflatten(2, sha)
            cc = cc.unflatten(1, sha)[:, None]
            lv = self._refine(fa, fb, wc, cc)
            h, w = int(sa[0]), int(sa[1])
            warp_fine, logit_fine = lv["fine"]
            out[f"warp{i}"] = upsample_field(warp_fine, STRIDE_FINE)[..., :h, :w].permute(0, 2, 3, 1)
            out[f"certainty{i}"] = torch.sigmoid(upsample_field(logit_fine, STRIDE_FINE)[:, 0, :h, :w])
            out[f"warp{i}_coarse"] = wc.permute(0, 2, 3, 1)
            out[f"certainty{i}_coarse"] = cc[:, 0]
            for name, (wl, ll) in lv.items():
                out[f"warp{i}_{name}"] = wl.permute(0, 2, 3, 1)
                out[f"logit{i}_{name}"] = ll[:, 0]
        return out

    def forward(self, data):
        """data: {"image0", "image1"} -> output dict (module docstring)."""
        im0, im1 = data["image0"], data["image1"]
        if im0.shape == im1.shape:  # one backbone pass for both images
            f = self.extract(torch.cat([im0, im1]))
            b = im0.shape[0]
            feats0 = {k: (v[:b] if k != "size" else v) for k, v in f.items()}
            feats1 = {k: (v[b:] if k != "size" else v) for k, v in f.items()}
        else:
            feats0, feats1 = self.extract(im0), self.extract(im1)
        return self.match(feats0, feats1)

    @torch.no_grad()
    def sample(self, out, num=5000, mutual=True, seed=None):
        """Certainty-weighted, spatially balanced matches per batch item (see sample.py)."""
        sc = self.conf["sample"]
        return sample_matches(out, num, mutual=mutual, mutual_px=sc["mutual_px"],
                              min_certainty=sc["min_certainty"], cell=sc["cell"],
                              seed=sc["seed"] if seed is None else seed)
