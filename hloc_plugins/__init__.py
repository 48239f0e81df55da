"""Plugins that make recon-match usable from upstream hloc without editing hloc.

    import hloc_plugins
    hloc_plugins.register()   # hloc.matchers.recon_dense + hloc.match_dense.confs entries
    from hloc import match_dense
    features, matches = match_dense.main(match_dense.confs["recon_dense"], pairs, images,
                                         export_dir=outputs)

`hloc_plugins.dropin.main` has the same signature and writes the same files through our
batched engine. Importing this package does nothing to hloc; only `register*` import it.
"""

import copy
import importlib.util
import logging
import sys
from pathlib import Path

from .confs import CONFS
from ._hloc import import_hloc, import_match_dense

logger = logging.getLogger(__name__)

MATCHER_MODULE = "hloc.matchers.recon_dense"


def register_matcher():
    """Make `hloc.matchers.recon_dense` importable (idempotent); returns that module.

    The plugin file is executed under hloc's module name, so the class's `__module__` is
    the one `dynamic_load` filters on.
    """
    matchers = import_hloc("hloc.matchers")
    module = sys.modules.get(MATCHER_MODULE)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            MATCHER_MODULE, Path(__file__).with_name("recon_dense.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[MATCHER_MODULE] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[MATCHER_MODULE]
            raise
    matchers.recon_dense = module
    return module


def register_confs(*, torchvision_stand_in: bool = False):
    """Add `CONFS` to `hloc.match_dense.confs` (copies; existing names are replaced).

    hloc.match_dense imports torchvision; see `_hloc.import_match_dense` for the stand-in.
    """
    match_dense = import_match_dense(torchvision_stand_in=torchvision_stand_in)
    match_dense.confs.update(copy.deepcopy(CONFS))
    return sorted(CONFS)


def register(*, torchvision_stand_in: bool = False):
    """Register the matcher and its presets with hloc; returns the preset names."""
    register_matcher()
    names = register_confs(torchvision_stand_in=torchvision_stand_in)
    logger.info("registered hloc matcher 'recon_dense' and confs %s", names)
    return names


__all__ = ["CONFS", "register", "register_matcher", "register_confs"]
