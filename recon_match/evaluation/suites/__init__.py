"""`recon-match evaluate`: evaluation suites side by side with baselines, one module each.

Suites (run in this order by `all`): synthetic, homography, pairs, zeroshot, speed, scenes,
localization. Each returns {dataset: {method: {metric: value}}}; our method is
`recon-match`, baselines are `opencv_sift`, `colmap_sift` and `kornia_loftr`.
`run_suites(ctx, names)` runs them, saving DIR/results.json and DIR/report.md after each.
"""

from .base import Context, SuiteSkipped
from .runner import SUITES, run_suites

__all__ = ["SUITES", "Context", "SuiteSkipped", "run_suites"]
