"""The reference map: a COLMAP reconstruction seen as per-image 2D observations of 3D points.

Works the same for models written by `recon-match sfm`, by hloc or by COLMAP: only the
registered images, their `points2D` and the `points3D` are used.
"""

from pathlib import Path

import numpy as np
import pycolmap
import torch

from ..coords import from_colmap
from ..fileio import safe_name

MODEL_FILES = ("cameras.bin", "cameras.txt")
MODEL_SUBDIRS = ("model", "sfm", "models/0", "0", "sparse/0", "sparse")


def find_model_dir(path) -> Path:
    """`path` itself when it holds a COLMAP model, else the usual sub-folders of an SfM output."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: model folder does not exist")
    for cand in (path, *(path / s for s in MODEL_SUBDIRS)):
        if any((cand / f).is_file() for f in MODEL_FILES):
            return cand
    raise FileNotFoundError(f"{path}: no COLMAP model (cameras.bin/.txt) here or in "
                            f"{', '.join(MODEL_SUBDIRS)}")


class ReferenceMap:
    """Registered images of a reconstruction with their triangulated observations.

    `observations(name)` -> (xy M x 2 float64 pixel-centre coords, point3D_ids M int64);
    `points3D(ids)` -> M x 3 world coordinates; `centers` name -> camera centre (3,).
    """

    def __init__(self, reconstruction: pycolmap.Reconstruction, source: str = "reconstruction"):
        self.rec = reconstruction
        # names become paths under the reference image folder: none may lead outside it
        self.images = {safe_name(im.name, f"image name in {source}"): im
                       for im in reconstruction.images.values() if im.has_pose}
        if not self.images:
            raise ValueError(f"{source}: the reconstruction has no registered images")
        if reconstruction.num_points3D() == 0:
            raise ValueError(f"{source}: the reconstruction has no 3D points to localize against")
        self._obs = {}

    @classmethod
    def read(cls, path):
        model_dir = find_model_dir(path)
        try:
            rec = pycolmap.Reconstruction(str(model_dir))
        except Exception as e:
            raise ValueError(f"{model_dir}: cannot read the COLMAP model ({e})") from e
        return cls(rec, str(model_dir))

    @property
    def names(self) -> list[str]:
        return sorted(self.images)

    @property
    def cameras(self) -> list[pycolmap.Camera]:
        return list(self.rec.cameras.values())

    def center(self, name: str) -> np.ndarray:
        return self.images[name].projection_center()

    def observations(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._obs:
            pts = [p for p in self.images[name].points2D if p.has_point3D()]
            xy = np.array([p.xy for p in pts], np.float64).reshape(-1, 2)
            ids = np.array([p.point3D_id for p in pts], np.int64)
            self._obs[name] = (from_colmap(xy), ids)
        return self._obs[name]

    def points3D(self, ids) -> np.ndarray:
        return np.array([self.rec.points3D[int(i)].xyz for i in ids], np.float64).reshape(-1, 3)

    def nearest_observations(self, name: str, xy: np.ndarray, max_error: float):
        """For each of N reference-image points `xy` (pixel centres), the nearest observation.

        Returns (index into `xy` of the points that found one within `max_error` px,
        their point3D ids).
        """
        obs_xy, ids = self.observations(name)
        if len(obs_xy) == 0 or len(xy) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        dist, nn = _nearest(torch.from_numpy(np.asarray(xy, np.float64)), torch.from_numpy(obs_xy))
        keep = np.flatnonzero(dist <= max_error)
        return keep, ids[nn[keep]]


def _nearest(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096):
    """Nearest row of `b` (M x 2) for each row of `a` (N x 2): (distances N, indices N)."""
    dists, idx = [], []
    for s in range(0, len(a), chunk):
        d = torch.cdist(a[s:s + chunk], b)
        m = d.min(1)
        dists.append(m.values)
        idx.append(m.indices)
    return torch.cat(dists).numpy(), torch.cat(idx).numpy()
