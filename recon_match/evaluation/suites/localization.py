"""Localization suite: a thin wrapper around the localization benchmark's
`run_localization_suite(out_dir, scenes_root=..., quick=..., net=...) -> {dataset: {method:
metrics}}` (aerial sample scene, leave-out queries on the real GT scenes, cross-modality
query styles), taken from `recon_match.localization` when it provides it, else from the
repository's `bench/localization.py`.
"""

import importlib.util
import logging

from .base import ROOT, SuiteSkipped

logger = logging.getLogger(__name__)

COLUMNS = ["recall@0.25m,2deg", "recall@0.5m,5deg", "recall@5m,10deg", "localized",
           "median_center_error", "median_rotation_error_deg", "seconds_per_query", "num_queries"]
PLOT = (["recall@0.5m,5deg"], "recall (%)")
BENCH = ROOT / "bench" / "localization.py"


def find_suite():
    """The `run_localization_suite` function, or None when neither place has it."""
    from ... import localization
    if hasattr(localization, "run_localization_suite"):
        return localization.run_localization_suite
    if not BENCH.is_file():
        return None
    spec = importlib.util.spec_from_file_location("recon_match_bench_localization", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "run_localization_suite", None)


def run(ctx, conf=None) -> dict:
    fn = find_suite()
    if fn is None:
        raise SuiteSkipped(f"no run_localization_suite in recon_match.localization or {BENCH}")
    aerial = ROOT / "sample_scenes" / "aerial"
    if ctx.quick and not (aerial / "queries").is_dir():
        raise SuiteSkipped(f"quick mode does not render scenes and {aerial} is not rendered "
                           "(run `recon-match render --scene aerial`)")
    kwargs = {"scenes_root": ctx.data("scenes"), "quick": ctx.quick, "net": ctx.model}
    return fn(ctx.work("localization"), **kwargs, **(conf or {}))
