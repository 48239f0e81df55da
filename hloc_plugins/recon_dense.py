"""Our dense matcher as an hloc dense matcher (`hloc.matchers.recon_dense` once registered).

`hloc_plugins.register()` loads this file as the module `hloc.matchers.recon_dense`, so
hloc's `dynamic_load(hloc.matchers, "recon_dense")` finds its single `BaseModel` subclass.

Contract, as hloc's dense matchers (e.g. its LoFTR adapter) follow it in `match_dense`:
inputs `image0` 1 x C x H0 x W0 and `image1` 1 x C x H1 x W1, float in [0, 1], C = 1
(hloc's `grayscale: True`) or 3, already resized by hloc; outputs `keypoints0` N x 2,
`keypoints1` N x 2 (pixel-centre coordinates of those resized images; hloc maps them back
to the originals) and `scores` N (match certainty in [0, 1]).
"""

import torch

from hloc_plugins._hloc import import_hloc

BaseModel = import_hloc("hloc.utils.base_model").BaseModel


class ReconDense(BaseModel):
    default_conf = {
        "name": "recon_dense",
        "weights": None,  # path to a checkpoint; None = the weights shipped with recon_match
        "max_num_matches": 5000,  # matches sampled per pair
        # keep only matches whose two warps agree (forward-backward check); off as in
        # recon_match.matching: on wide baselines it drops most good matches
        "mutual": False,
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
        image0, image1 = (_as_rgb(data[k]) for k in ("image0", "image1"))
        if image0.shape[0] != 1 or image1.shape[0] != 1:
            raise ValueError(f"recon_dense matches one pair per call as hloc's dense path "
                             f"does (batch size 1), got batches of {image0.shape[0]} and "
                             f"{image1.shape[0]}; use hloc_plugins.dropin.main for batches")
        out = self.net({"image0": image0, "image1": image1})
        pred = self.net.sample(out, num=self.conf["max_num_matches"],
                               mutual=self.conf["mutual"])[0]
        return {
            "keypoints0": pred["keypoints0"].float(),
            "keypoints1": pred["keypoints1"].float(),
            "scores": pred["scores"].float(),
        }


def _as_rgb(image: torch.Tensor) -> torch.Tensor:
    """B x {1,3} x H x W -> B x 3 x H x W (the network always sees three channels)."""
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"expected images B x 1 x H x W or B x 3 x H x W, got "
                         f"{tuple(image.shape)}")
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image
