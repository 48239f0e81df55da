"""Pseudo-labelled real pairs as a torch Dataset, and their mixing with the synthetic mixture.

`PseudoPairDataset` item (fixed size, so items collate and mix with `MixtureDataset`):

    image0, image1   float32 3 x H x W in [0, 1] (augmented crops of two frames)
    keypoints0       float32 K x 2  labelled points in image0 (pixels, pixel-centre convention)
    keypoints1       float32 K x 2  their correspondences in image1
    kp_valid         bool K         False on padding rows (fewer than K labels survived)
    generator        "video", style "none", source = the clip name

Item `i` is a pure function of (`seed`, `i`), like the synthetic mixture. Geometric
augmentation: an independent random crop (scale and aspect jitter) of each frame resized to
H x W, a horizontal flip of both, a random swap of image0 and image1; photometric:
`recon_match.data.styles.photometric` on each image. Labels follow every transform exactly.
"""

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from ..coords import rescale
from ..data.styles import photometric
from ..imageio import read_image
from ..config import merge_conf
from .store import read_clip

logger = logging.getLogger(__name__)

default_conf = {
    "labels": None,            # folder of <clip>.npz label files (store.py)
    "video": None,             # folder of the clips' frames
    "size": [192, 256],        # (H, W): the synthetic mixture's `size`, so batches mix
    "max_keypoints": 512,      # K
    "min_keypoints": 30,       # pairs with fewer labels are not used
    "min_gap": 1,              # only pairs at least this many frames apart
    "kinds": [0, 1],           # 0 = nearby, 1 = propagated
    "min_crop": 0.6,           # crop side as a fraction of the frame (then resized)
    "flip_prob": 0.5,
    "swap_prob": 0.5,
    "photometric_prob": 0.9,
    "seed": 0,
    "length": 100_000_000,
}


class PseudoPairDataset(torch.utils.data.Dataset):
    """Real pairs with sparse pseudo-labels (see the module docstring)."""

    def __init__(self, conf):
        self.conf = conf = merge_conf(default_conf, conf, "PseudoPairDataset")
        if conf["labels"] is None or conf["video"] is None:
            raise ValueError("PseudoPairDataset needs `labels` and `video` folders")
        files = sorted(Path(conf["labels"]).glob("*.npz"))
        if not files:
            raise FileNotFoundError(f"no label files (*.npz) in {conf['labels']}")
        self.clips, self.index = [], []
        for f in files:
            data = read_clip(f)
            n = np.diff(data["offsets"])
            gap = data["pairs"][:, 1] - data["pairs"][:, 0]
            use = (n >= conf["min_keypoints"]) & (gap >= conf["min_gap"]) & np.isin(data["kind"], conf["kinds"])
            self.index += [(len(self.clips), p) for p in np.nonzero(use)[0]]
            self.clips.append(data)
        if not self.index:
            raise ValueError(f"no labelled pairs in {conf['labels']} pass the filters "
                             f"(min_keypoints={conf['min_keypoints']}, min_gap={conf['min_gap']})")
        logger.info("%d pseudo-labelled pairs from %d clips", len(self.index), len(self.clips))

    def __len__(self):
        return int(self.conf["length"])

    def pair(self, k):
        """Raw pair k: (image0, image1 uint8 RGB, kp0, kp1 N x 2, clip name)."""
        c, p = self.index[k]
        data = self.clips[c]
        clip = data["meta"]["clip"]
        i, j = data["pairs"][p]
        s, e = data["offsets"][p], data["offsets"][p + 1]
        root = Path(self.conf["video"]) / clip
        return (read_image(root / data["frames"][i]), read_image(root / data["frames"][j]),
                data["kp0"][s:e], data["kp1"][s:e], clip)

    def __getitem__(self, index):
        rng = np.random.default_rng([int(self.conf["seed"]), 7, int(index)])
        im0, im1, kp0, kp1, clip = self.pair(int(rng.integers(len(self.index))))
        if rng.random() < self.conf["swap_prob"]:
            im0, im1, kp0, kp1 = im1, im0, kp1, kp0
        im0, kp0 = self._crop(rng, im0, kp0)
        im1, kp1 = self._crop(rng, im1, kp1)
        h, w = self.conf["size"]
        if rng.random() < self.conf["flip_prob"]:
            im0, im1 = im0[:, ::-1], im1[:, ::-1]
            kp0, kp1 = kp0 * [-1, 1] + [w - 1, 0], kp1 * [-1, 1] + [w - 1, 0]
        ok = _inside(kp0, h, w) & _inside(kp1, h, w)
        kp0, kp1 = kp0[ok], kp1[ok]
        k = self.conf["max_keypoints"]
        keep = rng.permutation(len(kp0))[:k]
        out0, out1, valid = np.zeros((k, 2), np.float32), np.zeros((k, 2), np.float32), np.zeros(k, bool)
        out0[:len(keep)], out1[:len(keep)], valid[:len(keep)] = kp0[keep], kp1[keep], True
        images = [photometric(rng, im) if rng.random() < self.conf["photometric_prob"] else im for im in (im0, im1)]
        return {"image0": _to_tensor(images[0]), "image1": _to_tensor(images[1]),
                "keypoints0": torch.from_numpy(out0), "keypoints1": torch.from_numpy(out1),
                "kp_valid": torch.from_numpy(valid), "generator": "video", "style": "none", "source": clip}

    def _crop(self, rng, image, kp):
        """Random crop with the output's aspect ratio (+-15%), resized to `size` -> (image, kp)."""
        h, w = self.conf["size"]
        H, W = image.shape[:2]
        aspect = w / h * np.exp(rng.uniform(-0.15, 0.15))
        side = rng.uniform(self.conf["min_crop"], 1.0)
        cw = min(W, side * np.sqrt(W * H * aspect))
        ch = min(H, cw / aspect)
        x0, y0 = rng.uniform(0, W - cw), rng.uniform(0, H - ch)
        # affine crop+resize with exact sub-pixel placement (pixel-centre convention)
        sx, sy = w / cw, h / ch
        A = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5]])
        interp = cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR
        out = cv2.warpAffine(image, A, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT)
        return out, rescale(kp - [x0, y0], (sx, sy)).astype(np.float32)


def _inside(kp, h, w):
    return (kp[:, 0] > -0.5) & (kp[:, 0] < w - 0.5) & (kp[:, 1] > -0.5) & (kp[:, 1] < h - 0.5)


def _to_tensor(image):
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255)


class MixedDataset(torch.utils.data.Dataset):
    """Synthetic and real pairs mixed batch by batch: all items of a batch come from one
    source (their keys differ), chosen by a seeded draw per batch with P(real) = `weight`.

    `per_batch`: items per optimizer step across processes (batch_size * world size), so
    the indices of one step (consecutive, as the trainer's sampler reads them) share a source.
    """

    def __init__(self, synthetic, real, weight, per_batch, seed=0):
        self.synthetic, self.real, self.weight = synthetic, real, float(weight)
        self.per_batch, self.seed = int(per_batch), int(seed)

    def __len__(self):
        return len(self.synthetic)

    def is_real(self, index):
        batch = int(index) // self.per_batch
        return np.random.default_rng([self.seed, 11, batch]).random() < self.weight

    def __getitem__(self, index):
        return (self.real if self.is_real(index) else self.synthetic)[index]


def mixed_with_real(synthetic, real_conf, per_batch, seed=0):
    """The trainer's hook: `synthetic` (a MixtureDataset) mixed with pseudo-labelled pairs.
    real_conf: `weight` (P(a batch is real)) + PseudoPairDataset options; the real pairs
    take the synthetic mixture's image size unless `size` is given."""
    conf = dict(real_conf)
    weight = conf.pop("weight")
    real = PseudoPairDataset({"size": list(synthetic.size), "seed": seed, **conf})
    return MixedDataset(synthetic, real, weight, per_batch, seed)
