"""Zero-shot suite (GIM's ZEB idea): one number over every real-image domain available.

Domains: relative pose AUC@5° on the pair set of each real GT scene (the `pairs` suite on
data_root/scenes; rendered sample scenes are not real and do not count) and homography
AUC@10 px on each homography dataset (the `homography` suite). The score of a method is the
plain mean over the domains where every method has a value, so each domain weighs the same
whatever its number of pairs. Computed from those suites' results (the runner runs them
first when needed).
"""

import numpy as np

from .base import SuiteSkipped, scene_folders

REQUIRES = ("pairs", "homography")
COLUMNS = ["score", "domains"]
PLOT = (["score"], "AUC (%)")
DOMAIN_METRICS = {"pairs": "auc@5", "homography": "auc@10px"}


def domains(ctx) -> dict:
    """{domain: {method: value}} from the finished pairs and homography results."""
    real = {name for name, _, is_real in scene_folders(ctx, need_gt=True) if is_real}
    out = {}
    for suite, metric in DOMAIN_METRICS.items():
        for dataset, per_method in (ctx.results.get(suite) or {}).items():
            if suite == "pairs" and dataset not in real:
                continue
            values = {m: v.get(metric) for m, v in per_method.items()}
            out[f"{suite}/{dataset} {metric}"] = {m: v for m, v in values.items() if v is not None}
    return out


def run(ctx, conf=None) -> dict:
    if conf:
        raise ValueError(f"the zeroshot suite takes no options, got {sorted(conf)}")
    doms = domains(ctx)
    if not doms:
        raise SuiteSkipped("no real-image domain was evaluated" + (
            " (quick mode runs on the rendered sample scenes only)" if ctx.quick else
            f" (no real scenes with gt/ or homography datasets under {ctx.data_root})"))
    methods = sorted(set.intersection(*(set(v) for v in doms.values())))
    if not methods:
        raise SuiteSkipped("no method has a value on every real domain")
    results = {"ZEB mean": {m: {"score": float(np.mean([v[m] for v in doms.values()])),
                                "domains": len(doms)} for m in methods}}
    results.update({d: {m: {"score": v[m]} for m in methods} for d, v in doms.items()})
    return results
