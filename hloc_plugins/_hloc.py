"""Importing upstream hloc: one install hint, and hloc.match_dense where torchvision is missing.

hloc is not on PyPI and is never needed to import `recon_match` or `hloc_plugins`; only the
functions that talk to hloc import it, through `import_hloc`, and fail with the hint below.
"""

import importlib
import logging
import sys
import types

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

HLOC_HINT = ("install hloc from its git repository (cvg/Hierarchical-Localization): "
             "pip install git+https://github.com/cvg/Hierarchical-Localization")


def import_hloc(module: str = "hloc"):
    """Import an hloc module, or raise ImportError with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name.split(".")[0] == "hloc":
            raise ImportError(f"{module} is needed here but hloc is not installed; "
                              f"{HLOC_HINT}") from e
        raise ImportError(f"{module} failed to import ({e}); its dependency {e.name!r} is "
                          f"missing") from e


def _resize(img: torch.Tensor, size, **_) -> torch.Tensor:
    """torchvision's tensor `resize` (bilinear, antialiased, half-pixel centres)."""
    batched = img.ndim == 4
    x = img if batched else img[None]
    y = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return y if batched else y[0]


def import_match_dense(torchvision_stand_in: bool = False):
    """`hloc.match_dense`, which imports torchvision at module level for a single `resize`.

    CPU-only torch builds often have no matching torchvision wheel (PyPI's is built for CUDA
    and fails to load against torch+cpu). With `torchvision_stand_in=True` and no importable
    torchvision, hloc.match_dense is imported against a module holding only that `resize`
    (same interpolation as torchvision's tensor path); the stand-in is removed from
    `sys.modules` right after, so nothing else in the process sees it. For tests and
    benchmarks on such machines; hloc's own code runs unchanged otherwise.
    """
    name = "hloc.match_dense"
    if name in sys.modules or not torchvision_stand_in:
        return import_hloc(name)
    try:
        import torchvision.transforms.functional  # noqa: F401
        return import_hloc(name)
    except (ImportError, RuntimeError) as e:  # RuntimeError: CUDA torchvision on torch+cpu
        logger.warning("torchvision is not importable (%s); importing hloc.match_dense with a "
                       "stand-in for torchvision.transforms.functional.resize", e)
    stand_in = {n: types.ModuleType(n) for n in
                ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")}
    stand_in["torchvision.transforms.functional"].resize = _resize
    stand_in["torchvision"].transforms = stand_in["torchvision.transforms"]
    stand_in["torchvision.transforms"].functional = stand_in["torchvision.transforms.functional"]
    saved = {n: sys.modules.pop(n) for n in stand_in if n in sys.modules}
    sys.modules.update(stand_in)
    try:
        return import_hloc(name)
    finally:
        for n in stand_in:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
