"""Structure-from-motion with pycolmap: database set-up, hloc-format import, COLMAP's SIFT
baseline, mapping, and stats.json (with ground-truth errors).

API in hloc's style:
    reconstruct(image_dir, out_dir, features=None, matches=None, pairs=None, *, conf=None,
                gt=None, image_list=None, timings=None, overwrite=False) -> pycolmap.Reconstruction
"""

from .reconstruction import default_conf, is_complete, reconstruct
from .stats import STATS_KEYS, read_stats

__all__ = ["STATS_KEYS", "default_conf", "is_complete", "read_stats", "reconstruct"]
