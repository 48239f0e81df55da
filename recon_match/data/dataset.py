"""`MixtureDataset`: the synthetic training mixture as a torch Dataset.

Item `i` is a pure function of (`seed`, `split`, `i`): a numpy Generator is seeded from those
three numbers, so any DataLoader worker produces the same bytes for the same index and no
state is shared between workers. Each item:

    image0, image1   float32 3 x H x W in [0, 1]
    warp0            float32 H x W x 2, pixel coords (x, y) in image1 of each image0 pixel centre
    valid0           bool H x W, covisible (in view, not occluded) — warp0 is 0 where False
    warp1, valid1    the twins from image1 to image0
    generator        str, the generator that made the pair
    style            str, the appearance style applied to image1 ("none" if none)
    source           str, the image source kind ("photo", "dead_leaves", ...)
"""

import logging

import numpy as np
import torch

from . import homography, lifting, multi_instance, multiview
from .sources import ImageSource
from .styles import DEFAULT_HELD_OUT, allowed_styles, apply_style, photometric
from ..imageio import to_gray
from ..config import merge_conf

logger = logging.getLogger(__name__)

SPLITS = {"train": 0, "val": 1, "test": 2}

default_conf = {
    "size": (240, 320),           # (H, W) of both images
    # relative weights; multiview (ray-traced, ~0.5-1 s a pair on one core) is opt-in: even
    # 5% of it would halve the mixture's throughput
    "weights": {"homography": 0.45, "lifting": 0.4, "multi_instance": 0.15, "multiview": 0.0},
    "seed": 0,
    "split": "train",             # "train" | "val" | "test": photos and RNG streams differ
    "length": 100_000,            # nominal epoch length (items are generated on the fly)
    "photo_root": None,           # folder with train/ val/ test/ photos; None = procedural only
    "photo_prob": 0.6,            # chance that a pair's source is a photo (if photo_root)
    "style_prob": 0.3,            # chance that image1 gets a cross-modality style
    "held_out_styles": list(DEFAULT_HELD_OUT),
    "include_held_out": False,    # True for validation sets that measure zero-shot styles
    "photometric_prob": 0.8,      # chance of independent photometric augmentation per image
    # chance, per image, of a grey (luminance-only) rendering: hloc feeds grey images and many
    # sensors (thermal, NIR, old aerial scans) have no colour. Drawn from a separate RNG stream
    # so sets made with 0 keep their bytes.
    "gray_prob": 0.0,
    # per-generator options (see each module's default_conf), e.g. {"homography": {"max_scale": 2}}
}


def _generators():
    """name -> (make_pair(rng, source, h, w, conf) -> numpy pair, its default_conf)."""
    return {"homography": (homography.make_pair, homography.default_conf),
            "lifting": (lifting.make_pair, lifting.default_conf),
            "multi_instance": (multi_instance.make_pair, multi_instance.default_conf),
            "multiview": (multiview.make_pair, multiview.default_conf)}


def to_torch(pair):
    """Numpy pair (uint8 HWC images) -> contract dict with torch tensors."""
    out = {}
    for k in ("image0", "image1"):
        out[k] = torch.from_numpy(np.ascontiguousarray(pair[k].transpose(2, 0, 1))).float().div_(255)
    for k in ("warp0", "warp1"):
        out[k] = torch.from_numpy(np.ascontiguousarray(pair[k], dtype=np.float32))
    for k in ("valid0", "valid1"):
        out[k] = torch.from_numpy(np.ascontiguousarray(pair[k], dtype=bool))
    for k in ("generator", "style", "source"):
        out[k] = pair[k]
    return out


class MixtureDataset(torch.utils.data.Dataset):
    """Synthetic pairs with exact dense ground truth; see the module docstring for items."""

    def __init__(self, conf=None):
        gens = _generators()
        base = dict(default_conf) | {name: {} for name in gens}
        self.conf = conf = merge_conf(base, conf, "MixtureDataset")
        if conf["split"] not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {conf['split']!r}")
        unknown = set(conf["weights"]) - set(gens)
        if unknown:
            raise ValueError(f"unknown generator(s) {sorted(unknown)} in weights; known: {sorted(gens)}")
        self.names = [n for n, w in conf["weights"].items() if w > 0]
        if not self.names:
            raise ValueError("weights: at least one generator needs a positive weight")
        p = np.array([conf["weights"][n] for n in self.names], np.float64)
        self.probs = p / p.sum()
        self.funcs = {n: gens[n][0] for n in self.names}
        self.gen_confs = {n: merge_conf(gens[n][1], conf[n], n) for n in self.names}
        self.size = tuple(int(s) for s in conf["size"])
        self.source = ImageSource(conf["photo_root"], conf["split"], conf["photo_prob"])
        self.styles = allowed_styles(conf["held_out_styles"], conf["include_held_out"])

    def __len__(self):
        return int(self.conf["length"])

    def rng(self, index):
        return np.random.default_rng([int(self.conf["seed"]), SPLITS[self.conf["split"]], int(index)])

    def sample(self, index, name=None):
        """Numpy pair for `index` (uint8 images, before conversion), optionally forcing the
        generator `name`; geometry and images are final (styles and augmentation applied)."""
        rng = self.rng(index)
        k = int(rng.choice(len(self.names), p=self.probs))
        name = self.names[k] if name is None else name
        h, w = self.size
        pair = self.funcs[name](rng, self.source, h, w, self.gen_confs[name])
        pair["generator"], pair["style"] = name, "none"
        if self.conf["style_prob"] > 0 and rng.random() < self.conf["style_prob"]:
            pair["image1"], pair["style"] = apply_style(rng, pair["image1"], self.styles, pair)
        for k in ("image0", "image1"):
            if rng.random() < self.conf["photometric_prob"] and not (k == "image1" and pair["style"] != "none"):
                pair[k] = photometric(rng, pair[k])
        if self.conf["gray_prob"] > 0:
            gray_rng = np.random.default_rng([int(self.conf["seed"]), SPLITS[self.conf["split"]], int(index), 1])
            for k in ("image0", "image1"):
                if gray_rng.random() < self.conf["gray_prob"]:
                    pair[k] = to_gray(pair[k])
        return pair

    def __getitem__(self, index):
        return to_torch(self.sample(index))
