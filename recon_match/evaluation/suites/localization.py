"""Localization suite: a thin wrapper around
`recon_match.localization.benchmark.run_localization_suite` (aerial sample scene, leave-out
queries on the real GT scenes, cross-modality query styles)."""

import logging

from .base import ROOT, SuiteSkipped

logger = logging.getLogger(__name__)

COLUMNS = ["recall@0.25m,2deg", "recall@0.5m,5deg", "recall@5.0m,10deg", "localized",
           "median_center_error", "median_rotation_error_deg", "seconds_per_query", "num_queries"]
PLOT = (["recall@0.5m,5deg"], "recall (%)")


def run(ctx, conf=None) -> dict:
    from ...localization.benchmark import run_localization_suite
    aerial = ROOT / "sample_scenes" / "aerial"
    if ctx.quick and not (aerial / "queries").is_dir():
        raise SuiteSkipped(f"quick mode does not render scenes and {aerial} is not rendered "
                           "(run `recon-match render --scene aerial`)")
    kwargs = {"scenes_root": ctx.data("scenes"), "quick": ctx.quick, "net": ctx.model}
    # the benchmark writes its maps and logs under <out>/localization itself
    return run_localization_suite(ctx.out / "work", **kwargs, **(conf or {}))
