"""What every evaluation suite shares: the run context, skipping, and finding datasets.

A suite is a module with `run(ctx, conf=None) -> {dataset: {method: {metric: value}}}`
(values are JSON numbers, None or an error string; `conf` overrides its `default_conf`),
`COLUMNS` (metrics shown in its table, in order; None = all) and `PLOT` ((metrics, y label)
drawn per dataset in the report); optionally `REQUIRES` (suites whose results it reads from
`ctx.results`) and `plot_datasets(results)`. A suite raises `SuiteSkipped` when it has no
data, naming what is missing.
"""

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...imageio import list_images

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SCENES_ROOT = ROOT / "sample_scenes"
DEFAULT_DATA_ROOT = ROOT.parent / "shared" / "data"
IMAGE_DIRS = ("images", "mapping")  # hloc's demo sets keep their images in mapping/
OURS, OPENCV_SIFT, COLMAP_SIFT, LOFTR = "recon-match", "opencv_sift", "colmap_sift", "kornia_loftr"


class SuiteSkipped(Exception):
    """A suite cannot run here (data missing, nothing to compare); the message says why."""


@dataclass
class Context:
    """Inputs shared by all suites. `model` is loaded on first use (speed runs without it).

    out: the evaluation folder (suites keep work files under out/work/<suite>);
    data_root: folder like ../shared/data (scenes/, homography/evd, natural/), or None;
    scenes_root: folder of sample scenes (NAME/{images,gt}); quick: small and fast settings.
    """
    out: Path
    data_root: Path | None = DEFAULT_DATA_ROOT
    scenes_root: Path | None = DEFAULT_SCENES_ROOT
    quick: bool = False
    weights: Path | None = None
    device: str | None = None
    resume: bool = False
    results: dict = field(default_factory=dict)  # finished suites' results (zeroshot reads them)
    _model: object = None

    @property
    def model(self):
        if self._model is None:
            from ...model import load_matcher  # torch model only when a suite needs it
            self._model = load_matcher(self.weights, self.device)
        return self._model

    def work(self, suite: str) -> Path:
        path = self.out / "work" / suite
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data(self, *parts) -> Path | None:
        """Path under data_root when it exists, else None."""
        if self.data_root is None:
            return None
        path = Path(self.data_root, *parts)
        return path if path.exists() else None


def image_dir(scene: Path) -> Path | None:
    for sub in IMAGE_DIRS:
        if (scene / sub).is_dir() and list_images(scene / sub):
            return scene / sub
    return None


def sample_scenes(ctx) -> list[Path]:
    """Folders under scenes_root. The bundled sample scenes among them are refreshed when
    rendered by an older renderer (their ground truth may differ), and in full mode the
    missing ones are rendered (a few minutes, once)."""
    root = ctx.scenes_root
    if root is None or not Path(root).is_dir():
        return []
    from ...render.sample import ensure_sample_scene, sample_scene_names
    names = {p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith(".")}
    known = set(sample_scene_names())
    if not ctx.quick and Path(root).resolve() == DEFAULT_SCENES_ROOT.resolve():
        names |= known
    return [ensure_sample_scene(n, root) if n in known else Path(root) / n for n in sorted(names)]


def scene_folders(ctx: Context, need_gt: bool) -> list[tuple[str, Path, bool]]:
    """(name, folder, real) of the scenes to evaluate: sample scenes first, then the real
    ones under data_root/scenes (skipped in quick mode). `need_gt`: only scenes with gt/."""
    folders = [(p, False) for p in sample_scenes(ctx)]
    real_root = None if ctx.quick else ctx.data("scenes")
    if real_root is not None:
        folders += [(p, True) for p in sorted(real_root.iterdir())
                    if p.is_dir() and not p.name.startswith(".")]
    scenes = []
    for folder, real in folders:
        if image_dir(folder) is None:
            logger.info("%s: no images/ folder; not a scene", folder)
        elif need_gt and not (folder / "gt").is_dir():
            logger.info("%s: no gt/ folder; skipped where ground truth is needed", folder)
        else:
            scenes.append((folder.name, folder, real))
    return scenes


def finite(x):
    """A JSON-safe number: NaN/Inf become None, numpy scalars become Python numbers."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def clean(results):
    """Recursively make a results dict JSON-safe (see `finite`)."""
    if isinstance(results, dict):
        return {str(k): clean(v) for k, v in results.items()}
    if isinstance(results, (list, tuple)):
        return [clean(v) for v in results]
    if isinstance(results, str):
        return results
    return finite(results)
