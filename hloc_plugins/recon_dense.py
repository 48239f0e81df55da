"""Our dense matcher as an hloc dense matcher (`hloc.matchers.recon_dense` once registered).

`hloc_plugins.register()` loads this file as the module `hloc.matchers.recon_dense`, so
hloc's `dynamic_load(hloc.matchers, "recon_dense")` finds its single `BaseModel` subclass.

Contract, as hloc's dense matchers (e.g. its LoFTR adapter) follow it in `match_dense`:
inputs `image0` 1 x C x H0 x W0 and `image1` 1 x C x H1 x W1, float in [0, 1], C = 1
(hloc's `grayscale: True`) or 3, already resized by hloc; outputs `keypoints0` N x 2,
`keypoints1` N x 2 (pixel-centre coordinates of those resized images; hloc maps them back
to the originals) and `scores` N (match certainty in [0, 1]).

As in our own engine, image1's keypoints are refined by NCC on the images hloc passes
(sub-pixel, `recon_match.subpixel`): object neighbours, median error 2.1 -> 1.8 px.
"""

import numpy as np
import torch

from hloc_plugins._hloc import import_hloc
from recon_match.matching import keeps_unrefined
from recon_match.subpixel import refine_matches

BaseModel = import_hloc("hloc.utils.base_model").BaseModel


class ReconDense(BaseModel):
    default_conf = {
        "name": "recon_dense",
        "weights": None,  # path to a checkpoint; None = the weights shipped with recon_match
        "max_num_matches": 5000,  # matches sampled per pair
        # keep only matches whose two warps agree (forward-backward check); off as in
        # recon_match.matching: on wide baselines it drops most good matches
        "mutual": False,
        "refine": True,           # NCC sub-pixel refinement of image1's keypoints
        "refine_window": 21,      # px of the images hloc passes
        "refine_search": 8.0,     # px
        # as recon_match.matching's keep_unrefined; True here: hloc has no pair gate, and
        # dropping the unplaced ones (200) left 11 of 20 object views registered, not 20
        "keep_unrefined": True,
    }
    required_inputs = ["image0", "image1"]

    def _init(self, conf):
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"unknown recon_dense conf keys {sorted(unknown)}; known keys: "
                             f"{sorted(self.default_conf)}")
        from recon_match.model import load_matcher

        # hloc moves the whole BaseModel to its device afterwards.
        self.net = load_matcher(weights=conf["weights"], device="cpu")

    def _forward(self, data):
        image0, image1 = data["image0"], data["image1"]
        if image0.shape[1] != image1.shape[1]:  # grey beside colour: match both in grey
            image0, image1 = _luma(image0), _luma(image1)
        image0, image1 = _as_rgb(image0), _as_rgb(image1)
        if image0.shape[0] != 1 or image1.shape[0] != 1:
            raise ValueError(f"recon_dense matches one pair per call as hloc's dense path "
                             f"does (batch size 1), got batches of {image0.shape[0]} and "
                             f"{image1.shape[0]}; use hloc_plugins.dropin.main for batches")
        out = self.net({"image0": image0, "image1": image1})
        pred = self.net.sample(out, num=self.conf["max_num_matches"],
                               mutual=self.conf["mutual"])[0]
        kp0, kp1, scores = (pred[k].float() for k in ("keypoints0", "keypoints1", "scores"))
        if self.conf["refine"] and len(kp0):
            kp1, placed = self._refine(image0, image1, kp0, kp1)
            if not keeps_unrefined(self.conf["keep_unrefined"], int(placed.sum())):
                kp0, kp1, scores = kp0[placed], kp1[placed], scores[placed]
        return {"keypoints0": kp0, "keypoints1": kp1, "scores": scores}

    def _refine(self, image0, image1, kp0, kp1):
        """kp1 refined on the grey images (kp0 fixed); returns (kp1, placed mask)."""
        gray0, gray1 = (_gray255(im) for im in (image0, image1))
        start = kp1.cpu().numpy()
        out, _, ok = refine_matches(gray0, gray1, kp0.cpu().numpy(), start,
                                    self.conf["refine_window"], self.conf["refine_search"])
        h, w = gray1.shape
        ok &= ((out >= -0.5) & (out <= [w - 0.5, h - 0.5])).all(1)  # hloc needs them inside
        out[~ok] = start[~ok]
        return torch.from_numpy(out).to(kp1), torch.from_numpy(ok).to(kp1.device)


def _as_rgb(image: torch.Tensor) -> torch.Tensor:
    """B x {1,3} x H x W -> B x 3 x H x W (the network always sees three channels)."""
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"expected images B x 1 x H x W or B x 3 x H x W, got "
                         f"{tuple(image.shape)}")
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def _luma(image: torch.Tensor) -> torch.Tensor:
    """B x {1,3} x H x W -> B x 1 x H x W grey (ITU-R 601 weights, as recon_match.imageio)."""
    if image.ndim != 4 or image.shape[1] != 3:
        return image
    w = image.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (image * w).sum(1, keepdim=True)


def _gray255(image: torch.Tensor) -> np.ndarray:
    """1 x C x H x W in [0, 1] -> H x W float32 grey levels in [0, 255]."""
    return (255 * _luma(image)[0, 0].float().cpu()).numpy()
