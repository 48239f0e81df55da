"""Sparse-correspondence losses for pseudo-labelled real pairs.

The same terms, names and config as the dense losses of `recon_match.train.losses` (so the
trainer logs and weights them alike), evaluated only at the labelled keypoints, both ways:

- coarse: NLL of the labelled image1 cell under the dual-softmax at the keypoint's cell;
- mid / fine: Charbonnier of the level's warp sampled at the keypoint against the label, in
  units of the level's stride (robust: pseudo-labels keep a few outliers);
- cert_mid / cert_fine: BCE of the certainty logit at the keypoint against "the prediction
  is within `cert_thresh` px of the label" — labelled points are matchable, so the target is
  1 wherever the network finds the label; where it misses, certainty must not claim it did.
"""

import torch
import torch.nn.functional as F

from ..coords import normalize
from ..config import merge_conf
from ..model.matcher import STRIDE_COARSE
from ..train.losses import LEVELS, charbonnier
from ..train.losses import default_conf as dense_conf


def _mean(x, mask):
    """Per-sample mean of x (B x K) over mask (B x K), 0 for an empty mask."""
    m = mask.float()
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


def sample_at(field, kp, stride):
    """Bilinear sample of a level field (B x h x w x C or B x h x w) at input-pixel points
    kp (B x K x 2) -> B x K x C (or B x K)."""
    squeeze = field.dim() == 3
    f = field[..., None] if squeeze else field
    _, h, w, _ = f.shape
    grid = normalize(kp, (w * stride, h * stride))[:, :, None]
    out = F.grid_sample(f.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)[..., 0].transpose(1, 2)
    return out[..., 0] if squeeze else out


def coarse_nll_sparse(logp, kp0, kp1, valid, shape0, shape1):
    """NLL (B,) of the cell of kp1 given the cell of kp0. logp B x N0 x N1."""
    def cell(kp, shape):
        h, w = shape
        c = torch.floor((kp + 0.5) / STRIDE_COARSE).long()
        return c[..., 1].clamp(0, h - 1) * w + c[..., 0].clamp(0, w - 1)
    rows = logp.gather(1, cell(kp0, shape0)[..., None].expand(-1, -1, logp.shape[2]))
    nll = -rows.gather(2, cell(kp1, shape1)[..., None])[..., 0]
    return _mean(nll, valid)


def sparse_losses(out, batch, conf=None):
    """Model output + batch with `keypoints0/1` B x K x 2 and `kp_valid` B x K -> dict of
    per-sample losses (B,) with `total` (same keys as the dense `compute_losses`)."""
    conf = merge_conf(dense_conf, conf, "loss", nested=("weights", "cert_thresh", "truncate"))
    kps, valid = (batch["keypoints0"], batch["keypoints1"]), batch["kp_valid"]
    shapes = (out["warp0_coarse"].shape[1:3], out["warp1_coarse"].shape[1:3])
    logp = out["coarse_logprob"]
    losses = {k: 0.0 for k in conf["weights"]}
    losses["coarse"] = 0.5 * (coarse_nll_sparse(logp, kps[0], kps[1], valid, *shapes)
                              + coarse_nll_sparse(logp.transpose(1, 2), kps[1], kps[0], valid, *shapes[::-1]))
    for i in (0, 1):
        src, dst = kps[i], kps[1 - i]
        for level, stride in LEVELS.items():
            pred = sample_at(out[f"warp{i}_{level}"], src, stride)
            logit = sample_at(out[f"logit{i}_{level}"], src, stride)
            err = (pred - dst).norm(dim=-1)
            reg = charbonnier(err / stride, conf["charbonnier_eps"])
            cap = conf.get("truncate", {}).get(level)  # as the dense loss: hopeless points are capped
            if cap is not None:
                reg = torch.where(err / stride < cap, reg, torch.full_like(reg, cap))
            losses[level] = losses[level] + 0.5 * _mean(reg, valid)
            target = (err.detach() < conf["cert_thresh"][level]).float()
            bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
            losses[f"cert_{level}"] = losses[f"cert_{level}"] + 0.5 * _mean(bce, valid)
    losses["total"] = sum(conf["weights"][k] * losses[k] for k in conf["weights"])
    return losses

