"""Validation metrics of dense warps: end-point error, PCK, certainty calibration, per group.

Every pair contributes to the groups `all`, `gen/<generator>`, `style/<style>` and, when it
has a style, `styles_seen` or `styles_held_out` (zero-shot cross-modality). Sums are kept per
group so that metrics are pixel-weighted over the whole set, not averages of averages.
"""

from collections import defaultdict

import torch

PCK_THRESHOLDS = (1, 3, 5)
CERT_THRESHOLDS = (0.5, 0.8)
CALIB_PX = 3.0


def pair_sums(warp, cert, warp_gt, valid):
    """Sums for one direction of one pair. warp, warp_gt: H x W x 2, cert, valid: H x W."""
    err = (warp - warp_gt).norm(dim=-1)[valid]
    s = {"n": float(valid.sum()), "epe": float(err.sum())}
    for t in PCK_THRESHOLDS:
        s[f"pck{t}"] = float((err < t).sum())
    correct = valid & ((warp - warp_gt).norm(dim=-1) < CALIB_PX)
    for t in CERT_THRESHOLDS:
        sel = cert >= t
        s[f"sel@{t}"] = float(sel.sum())
        s[f"hit@{t}"] = float((sel & correct).sum())
        s[f"selvalid@{t}"] = float((sel & valid).sum())
    return s, err


class ValidationMeter:
    """Accumulates `pair_sums` per group; `summary()` gives ratios per group."""

    def __init__(self, held_out_styles=()):
        self.held_out = set(held_out_styles)
        self.sums = defaultdict(lambda: defaultdict(float))
        self.errors = defaultdict(list)

    def groups(self, generator, style):
        g = ["all", f"gen/{generator}", f"style/{style}"]
        if style != "none":
            g.append("styles_held_out" if style in self.held_out else "styles_seen")
        return g

    @torch.no_grad()
    def update(self, out, batch):
        """out: model output, batch: ground-truth batch (contract keys, plus generator/style lists)."""
        for b in range(out["warp0"].shape[0]):
            groups = self.groups(batch["generator"][b], batch["style"][b])
            for i in (0, 1):
                s, err = pair_sums(out[f"warp{i}"][b].float(), out[f"certainty{i}"][b].float(),
                                   batch[f"warp{i}"][b], batch[f"valid{i}"][b])
                for g in groups:
                    for k, v in s.items():
                        self.sums[g][k] += v
                    self.sums[g]["pairs"] += 0.5
                    self.errors[g].append(err)

    def summary(self):
        """{group: {metric: value}}: epe (mean px), median (px), pck1/3/5 (fraction of covisible
        pixels), prec@t (fraction of pixels with certainty >= t within 3 px), cov@t (fraction of
        covisible pixels with certainty >= t), pairs."""
        res = {}
        for g, s in self.sums.items():
            n = max(s["n"], 1.0)
            err = torch.cat(self.errors[g]) if self.errors[g] else torch.zeros(0)
            r = {"pairs": s["pairs"], "epe": s["epe"] / n,
                 "median": float(err.median()) if err.numel() else float("nan")}
            for t in PCK_THRESHOLDS:
                r[f"pck{t}"] = s[f"pck{t}"] / n
            for t in CERT_THRESHOLDS:
                r[f"prec@{t}"] = s[f"hit@{t}"] / max(s[f"sel@{t}"], 1.0)
                r[f"cov@{t}"] = s[f"selvalid@{t}"] / n
            res[g] = r
        return res
