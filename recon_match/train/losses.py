"""Training losses of the dense matcher, per sample (B,) with a `total` key.

- coarse: negative log-likelihood of the ground-truth coarse cell under the dual-softmax,
  both directions, on coarse cells whose centre is covisible;
- mid / fine: Charbonnier regression of the 1/8 and 1/2 warps in units of the level's
  stride (so each level is judged at its own precision), on covisible pixels, truncated at
  `truncate` strides: beyond its search window a level cannot fix an error, and the L1 pull
  of hopeless pixels would drown the sub-pixel signal (it dominated the first runs);
- cert_mid / cert_fine: binary cross-entropy of the certainty logit against
  "covisible and within `cert_thresh` px" (the error of the detached prediction).
"""

import torch
import torch.nn.functional as F

from ..coords import normalize, pixel_grid
from ..config import merge_conf
from ..model.matcher import STRIDE_COARSE, STRIDE_FINE, STRIDE_MID

default_conf = {
    "weights": {"coarse": 1.0, "mid": 1.0, "fine": 1.0, "cert_mid": 0.5, "cert_fine": 0.5},
    "charbonnier_eps": 0.05,  # in stride units: 0.1 px at 1/2, 0.4 px at 1/8
    "cert_thresh": {"mid": 8.0, "fine": 3.0},  # px
    "truncate": {"mid": 6.0, "fine": 4.0},  # strides: 48 px at 1/8, 8 px at 1/2
}

LEVELS = {"mid": STRIDE_MID, "fine": STRIDE_FINE}


def gt_at_level(warp, valid, h, w, stride):
    """Ground truth at the pixel centres of an h x w grid of `stride` (input px).

    warp: B x H x W x 2, valid: B x H x W (input resolution) -> warp B x h x w x 2 and
    valid B x h x w; a level pixel is valid only if every input pixel it interpolates is.
    """
    b, hh, ww = valid.shape
    centres = (pixel_grid(h, w, device=warp.device) + 0.5) * stride - 0.5
    grid = normalize(centres, (ww, hh))[None].expand(b, -1, -1, -1)
    wg = F.grid_sample(warp.permute(0, 3, 1, 2), grid, mode="bilinear", align_corners=False)
    vg = F.grid_sample(valid[:, None].float(), grid, mode="bilinear", align_corners=False)
    return wg.permute(0, 2, 3, 1), vg[:, 0] > 0.999


def _masked_mean(x, mask):
    """Per-sample mean of x over mask (B x ...), 0 where the mask is empty."""
    m = mask.flatten(1).float()
    return (x.flatten(1) * m).sum(1) / m.sum(1).clamp(min=1)


def coarse_nll(logp, warp_gt, valid_gt, shape0, shape1):
    """NLL (B,) of the true image1 cell for each covisible image0 cell. logp: B x N0 x N1."""
    h0, w0 = shape0
    h1, w1 = shape1
    wg, vg = gt_at_level(warp_gt, valid_gt, h0, w0, STRIDE_COARSE)
    cell = torch.floor((wg + 0.5) / STRIDE_COARSE).long()
    cx, cy = cell[..., 0], cell[..., 1]
    vg = vg & (cx >= 0) & (cx < w1) & (cy >= 0) & (cy < h1)
    target = (cy.clamp(0, h1 - 1) * w1 + cx.clamp(0, w1 - 1)).flatten(1)
    nll = -logp.gather(2, target[..., None])[..., 0]
    return _masked_mean(nll, vg.flatten(1))


def charbonnier(x, eps):
    return torch.sqrt(x * x + eps * eps)


def compute_losses(out, batch, conf=None):
    """Model output + ground-truth batch -> dict of per-sample losses (B,) with `total`."""
    conf = merge_conf(default_conf, conf, "loss", nested=("weights", "cert_thresh", "truncate"))
    losses = {k: 0.0 for k in conf["weights"]}
    shape0 = out["warp0_coarse"].shape[1:3]
    shape1 = out["warp1_coarse"].shape[1:3]
    logp = out["coarse_logprob"]
    losses["coarse"] = 0.5 * (coarse_nll(logp, batch["warp0"], batch["valid0"], shape0, shape1)
                              + coarse_nll(logp.transpose(1, 2), batch["warp1"], batch["valid1"], shape1, shape0))
    for i in (0, 1):
        for level, stride in LEVELS.items():
            pred, logit = out[f"warp{i}_{level}"], out[f"logit{i}_{level}"]
            wg, vg = gt_at_level(batch[f"warp{i}"], batch[f"valid{i}"], *pred.shape[1:3], stride)
            err = (pred - wg).norm(dim=-1)
            cap = conf["truncate"][level]
            reg = charbonnier(err / stride, conf["charbonnier_eps"])
            reg = torch.where(err / stride < cap, reg, torch.full_like(reg, cap))
            losses[level] = losses[level] + 0.5 * _masked_mean(reg, vg)
            target = (vg & (err.detach() < conf["cert_thresh"][level])).float()
            bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
            losses[f"cert_{level}"] = losses[f"cert_{level}"] + 0.5 * bce.flatten(1).mean(1)
    losses["total"] = sum(conf["weights"][k] * losses[k] for k in conf["weights"])
    return losses
