"""The batched dense matching engine: pairs in, hloc-format features.h5 + matches.h5 out.

`main(conf, pairs, image_dir, export_dir)` works in hloc's style (`confs` presets,
`overwrite=False` skips finished work) and fixes what hloc's dense matching lacks:
- images are decoded and resized in background threads, ahead of the network;
- `model.extract` runs once per image, features kept in an LRU cache bounded in MB;
- pairs whose resized images have equal sizes are matched `batch_size` at a time, on CUDA
  when available;
- raw matches go to a resumable shard store (`rawstore`), so a killed run resumes where it
  stopped and ends with the same files as an uninterrupted one (batches are formed from
  the full pair list and features extracted one image at a time, so results do not depend
  on what was already done);
- matches are taken at fixed anchor pixels of each image (`gridsample`), the same in all
  of its pairs, refined on the full-resolution images (`subpixel`), then quantized into
  keypoints shared across pairs (`quantize`): long tracks without losing the refinement's
  precision; zero-match pairs and NaN/Inf are handled.
"""

import logging
import threading
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .coords import rescale
from .fileio import atomic_path, safe_name
from .gridsample import CONSISTENT_PX, sample_grid
from .h5io import list_groups, names_to_pair, open_h5
from .imageio import list_images
from .pairs import read_pairs
from .preprocess import load_for_network, network_size
from .quantize import default_conf as quantize_defaults
from .config import merge_conf
from .quantize import quantize
from .rawstore import RawStore
from .subpixel import refine_matches

logger = logging.getLogger(__name__)

default_conf = {
    "output": "matches-recon-dense",
    "weights": None,           # None: shipped weights
    # long side for the network (downscale only), multiple of 16. 384, not 640: the NCC
    # refinement on the full-resolution images gives the precision, and the network, trained on
    # 256 px crops, holds wide baselines better at this scale (sacre_coeur 2 -> 10/10 registered;
    # Strecha AUC@1 93.4 -> 94.6; 2.7x faster); "recon-dense-hq" matches at 640
    "resize": 384,
    "dfactor": 16,
    "batch_size": 4,           # pairs per forward pass (same-size images only)
    "num_matches": 5000,       # sampled per pair (both directions together)
    "sampler": "grid",         # "grid": fixed anchor pixels (long tracks); "model": model.sample
    "grid_stride": 4,          # anchor spacing of the grid sampler, network px
    # forward-backward check (within 3 network px); off: on wide baselines the two warps
    # disagree on most good matches (sacre_coeur: median 4 -> 115 matches a pair), and RANSAC
    # removes the outliers it lets through
    "mutual": False,
    "min_certainty": None,     # None: the model's own sampling threshold
    "refine": True,            # NCC refinement on the full-resolution images
    "refine_window": 21,       # template side, full-resolution px (odd)
    "refine_search": 2.0,      # search radius, network px (times the resize factor, >= 2 px)
    "refine_min_ncc": 0.8,     # below: the match is not moved by the refinement
    # NCC templates follow the warp's local affine (rotation, scale, foreshortening); a square
    # window fails across them and leaves those matches at network precision
    "refine_affine": True,
    # keep matches the refinement could not place (at network precision, often px off) only
    # in pairs where it placed fewer than this many (decided after the pair gate, which
    # counts all of a pair's confident matches): NCC fails across large viewpoint and
    # lighting changes (sacre_coeur: 10 -> 2 of 10 views registered if always dropped), while
    # where it works the unplaced rest is mostly outliers that pass RANSAC along the epipolar
    # lines (scenes suite, aerial AUC@5 97.6 -> 99.1); True / False: always / never
    "keep_unrefined": 200,
    # pairs with less `support` (consistent, NCC-placed matches) are matched again with image1
    # turned by 90, 180 and 270 degrees and keep the turn with the most (drone strips reverse
    # heading; the network is trained for in-plane rotations up to +-60 degrees); 0 = never
    "rotation_search_below": 0,
    # a pair with fewer confident matches (score > CONFIDENT) than this fraction of the
    # smaller of its two images' best pair is dropped before quantization (barely overlapping
    # views give smooth but wrong warps). Off by default since the NCC and track refinements:
    # 0.2 no longer changes object or aerial (AUC@5 98.5 / 99.9 with and without) but cuts the
    # weak links of internet photos (sacre_coeur 10 -> 7/10 registered); 0 = keep all
    "pair_gate": 0.0,
    # network px; finer than hloc's 8 / 2 px: anchors are exact, so cells need not merge
    # them, and snapping refined matches by more would undo the refinement (see README)
    "quantize": {"cell_size": 1.0, "max_error": 0.5, "position": "mean"},
    "feature_cache_mb": 1024,  # per-image features kept for reuse (LRU)
    "image_cache_mb": 512,     # decoded images kept for reuse (LRU)
    "num_workers": 2,          # image decoding threads
    "shard_size": 256,         # pairs per raw-match shard (a kill loses < 1 pair)
    "device": None,            # None: CUDA when available, else CPU
}

CONFIDENT = 0.5  # match score above which a match counts for the pair gate
# the gate judges a pair only against images with a pair of at least this fraction of
# `num_matches` confident matches: on photos far from the training data (sacre_coeur) hardly
# any match is confident, scores say little, and gating there drops good pairs (9/10 -> 4/10)
GATE_MIN_BEST = 0.1
ROTATION_SEARCH_BELOW = 200  # matches: the threshold that the CLIs' --rotation-search turns on

_NOT_IN_FINGERPRINT = ("quantize", "pair_gate", "keep_unrefined", "output", "feature_cache_mb",
                       "image_cache_mb", "num_workers", "shard_size", "device", "batch_size")

confs = {
    "recon-dense": {},
    "recon-dense-fast": {"output": "matches-recon-dense-fast", "resize": 320,
                         "num_matches": 3000},
    "recon-dense-hq": {"output": "matches-recon-dense-hq", "resize": 640,
                       "num_matches": 8000},
    "recon-dense-raw": {"output": "matches-recon-dense-raw", "refine": False},
}


def make_conf(conf: dict | None) -> dict:
    """Defaults merged with `conf`; unknown keys (also in `quantize`) are errors."""
    conf = merge_conf(default_conf, conf, "matching")
    conf["quantize"] = merge_conf(quantize_defaults, {**default_conf["quantize"],
                                                      **(conf["quantize"] or {})}, "quantize")
    ku = conf["keep_unrefined"]
    if not isinstance(ku, (bool, int, float)) or ku < 0:
        raise ValueError(f"keep_unrefined {ku!r} must be true, false or a match count >= 0")
    if not 0 <= conf["pair_gate"] <= 1:
        raise ValueError(f"pair_gate {conf['pair_gate']} must be within [0, 1]")
    if conf["resize"] and conf["resize"] % conf["dfactor"]:
        raise ValueError(f"resize {conf['resize']} must be a multiple of {conf['dfactor']}")
    return conf


class LRU:
    """Thread-safe cache bounded by the total bytes of its values."""

    def __init__(self, max_mb: float):
        self.max_bytes, self.bytes = max_mb * 2**20, 0
        self.data, self.lock = OrderedDict(), threading.Lock()

    @staticmethod
    def nbytes(value) -> int:
        vals = value.values() if isinstance(value, dict) else [value]
        return sum(v.numel() * v.element_size() if torch.is_tensor(v) else getattr(v, "nbytes", 0)
                   for v in vals)

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
            return None

    def put(self, key, value):
        with self.lock:
            if key in self.data:
                return
            self.data[key] = value
            self.bytes += self.nbytes(value)
            while self.bytes > self.max_bytes and len(self.data) > 1:
                self.bytes -= self.nbytes(self.data.popitem(last=False)[1])


def rotate_image(image: dict, k: int) -> dict:
    """An image dict of `load_for_network` turned counter-clockwise by k * 90 degrees."""
    odd = k % 2 == 1
    out = {"image": torch.rot90(image["image"], k, dims=(-2, -1)).contiguous(),
           "size": image["size"][::-1] if odd else image["size"],
           "scale": image["scale"][::-1] if odd else image["scale"]}
    if "gray" in image:
        out["gray"] = np.ascontiguousarray(np.rot90(image["gray"], k))
    return out


def unrotate_points(xy: np.ndarray, k: int, size) -> np.ndarray:
    """Pixel-centre points of an image turned by `rotate_image(., k)` back into the original
    image of `size` (W, H)."""
    w, h = size
    x, y = xy[:, 0], xy[:, 1]
    back = {0: (x, y), 1: (w - 1 - y, x), 2: (w - 1 - x, h - 1 - y), 3: (y, h - 1 - x)}[k % 4]
    return np.stack(back, 1).astype(xy.dtype)


def auto_rotation_search(pair_method: str) -> int:
    """`rotation_search_below` of the CLIs' `auto`: on unless the pairs are exhaustive, where
    most weak pairs do not overlap at all (four matches each for nothing)."""
    return 0 if pair_method == "exhaustive" else ROTATION_SEARCH_BELOW


def oriented_size(path) -> tuple[int, int]:
    """(W, H) after EXIF orientation, from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            swap = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception as e:  # Pillow raises many types for bad files
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e
    return (h, w) if swap else (w, h)


def make_batches(pairs, net_sizes: dict, batch_size: int):
    """Group pair indices by (size0, size1) of their resized images, `batch_size` each,
    in order of first appearance (deterministic for a given pair list)."""
    groups = defaultdict(list)
    for i, (n0, n1) in enumerate(pairs):
        groups[(net_sizes[n0], net_sizes[n1])].append(i)
    return [idx[k:k + batch_size] for idx in groups.values()
            for k in range(0, len(idx), batch_size)]


class Engine:
    """Runs the model over batches of pairs with threaded decoding and feature caching."""

    def __init__(self, model, conf, image_dir, device):
        self.model, self.conf, self.image_dir, self.device = model, conf, Path(image_dir), device
        self.images = LRU(conf["image_cache_mb"])
        self.features = LRU(conf["feature_cache_mb"])
        self.pool = ThreadPoolExecutor(max(1, conf["num_workers"]))

    def load(self, name):
        img = self.images.get(name)
        if img is None:
            img = load_for_network(self.image_dir / name, self.conf["resize"],
                                   self.conf["dfactor"], keep_gray=self.conf["refine"])
            self.images.put(name, img)
        return img

    def prefetch(self, names):
        return {n: self.pool.submit(self.load, n) for n in dict.fromkeys(names)}

    def feats(self, name, image):
        f = self.features.get(name)
        if f is None:  # one image at a time: features do not depend on batch composition
            f = self.model.extract(image["image"][None].to(self.device))
            f = {k: v for k, v in f.items() if k != "size"}
            self.features.put(name, f)
        return f

    def _stack(self, items):
        """Batched features of [(cache key, image dict)] (images of equal size)."""
        fs = [self.feats(key, image) for key, image in items]
        out = {k: torch.cat([f[k] for f in fs]) for k in fs[0]}
        h, w = items[0][1]["image"].shape[-2:]
        out["size"] = torch.tensor([h, w])
        return out

    @torch.no_grad()
    def match_batch(self, batch_pairs, images):
        """Raw matches in original pixels for a list of (name0, name1) of equal sizes."""
        f0 = self._stack([(p[0], images[p[0]]) for p in batch_pairs])
        f1 = self._stack([(p[1], images[p[1]]) for p in batch_pairs])
        samples = self.sample(self.model.match(f0, f1))
        results = [self.to_original(s, images[n0], images[n1])
                   for s, (n0, n1) in zip(samples, batch_pairs)]
        below = self.conf["rotation_search_below"]
        return [self.rotation_search(res, images[n0], n0, images[n1], n1) if support(res) < below
                else res for res, (n0, n1) in zip(results, batch_pairs)]

    def rotation_search(self, best, im0, n0, im1, n1):
        """The result with the most `support` among `best` (image1 upright) and image1 turned
        by k * 90 degrees, k = 1, 2, 3; keypoints1 always in image1's own frame."""
        f0 = self._stack([(n0, im0)])
        for k in (1, 2, 3):
            turned = rotate_image(im1, k)
            s = self.sample(self.model.match(f0, self._stack([((n1, k), turned)])))[0]
            res = self.to_original(s, im0, turned)
            if support(res) > support(best):
                best = {**res, "keypoints1": unrotate_points(res["keypoints1"], k, im1["size"])}
        return best

    def sample(self, out):
        """Sparse matches (network pixels) per batch item of a model output."""
        c = self.conf
        if c["sampler"] == "model":
            return self.model.sample(out, num=c["num_matches"], mutual=c["mutual"])
        if c["sampler"] != "grid":
            raise ValueError(f"unknown sampler {c['sampler']!r}; use 'grid' or 'model'")
        min_cert = c["min_certainty"]
        if min_cert is None:
            min_cert = getattr(self.model, "conf", {}).get("sample", {}).get("min_certainty", 0.05)
        return sample_grid(out, c["num_matches"], c["grid_stride"],
                           CONSISTENT_PX if c["mutual"] else None, min_cert)

    def to_original(self, s, im0, im1):
        kp0, kp1 = s["keypoints0"].float().cpu(), s["keypoints1"].float().cpu()
        scores = s["scores"].float().cpu()
        # matches anchored on image0's pixels keep kp0 fixed and refine kp1; those anchored
        # on image1 keep kp1 and refine kp0, so anchors stay exactly shared across pairs
        from0 = (s["anchor0"].cpu() if "anchor0" in s else (kp0 == kp0.round()).all(1)).numpy()
        kp0 = rescale(kp0, im0["scale"]).numpy()
        kp1 = rescale(kp1, im1["scale"]).numpy()
        scores = scores.numpy()
        # verified: forward-backward consistent and placed by the NCC refinement
        verified = s["consistent"].cpu().numpy() if "consistent" in s else np.ones(len(scores), bool)
        keep = np.isfinite(kp0).all(1) & np.isfinite(kp1).all(1) & np.isfinite(scores)
        refined = np.ones(len(scores), bool)
        if self.conf["refine"]:
            affine = s["affine"].float().cpu().numpy() if self.conf["refine_affine"] and \
                "affine" in s else None
            refined = self._refine(kp0, kp1, from0, im0, im1, affine)
            verified = verified & refined
        return {"keypoints0": kp0[keep], "keypoints1": kp1[keep], "scores": scores[keep],
                "verified": verified[keep], "refined": refined[keep]}

    def _refine(self, kp0, kp1, from0, im0, im1, affine=None):
        """Refine in place; returns the mask of matches that passed the NCC check. `affine`:
        N x 2 x 2 local warps (network px) from each match's anchor image to the other."""
        ok = np.zeros(len(kp0), bool)
        c = self.conf
        for sel, (fix, mov, a, b) in ((from0, (kp0, kp1, im0, im1)),
                                      (~from0, (kp1, kp0, im1, im0))):
            if not sel.any():
                continue
            search = max(2.0, c["refine_search"] * float(np.mean(b["scale"])))
            # network px -> original px: scale of the moving image over that of the anchor's
            aff = None if affine is None else \
                np.diag(b["scale"]) @ affine[sel] @ np.diag(1 / np.asarray(a["scale"]))
            mov[sel], _, ok[sel] = refine_matches(a["gray"], b["gray"], fix[sel], mov[sel],
                                                  c["refine_window"], search, c["refine_min_ncc"],
                                                  aff)
        return ok

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


def keeps_unrefined(setting, num_refined: int) -> bool:
    """`keep_unrefined` for a pair whose refinement placed `num_refined` matches: True / False,
    or a number N: keep the unplaced ones only where fewer than N were placed."""
    if isinstance(setting, bool):
        return setting
    return num_refined < setting


def support(res) -> int:
    """How well a pair matched: its matches that are forward-backward consistent and placed by
    the NCC refinement (the kept others are many even for unrelated or turned views)."""
    return int(res["verified"].sum())


def weak_pairs(pairs, confident: list, ratio: float, min_best: int = 0) -> set:
    """Indices of `pairs` whose confident-match count is below `ratio` times the smaller of
    its two images' best count, when that best is at least `min_best` (an image's best pair
    always stays)."""
    best = defaultdict(int)
    for (n0, n1), c in zip(pairs, confident):
        best[n0], best[n1] = max(best[n0], c), max(best[n1], c)
    return {i for i, ((n0, n1), c) in enumerate(zip(pairs, confident))
            if c < ratio * min(best[n0], best[n1]) and min(best[n0], best[n1]) >= min_best}


def _gate(store, pairs, conf) -> set:
    ratio = conf["pair_gate"]
    if ratio <= 0:
        return set()
    # scores only: quantization reads the full matches once afterwards
    counts = [int((store.load(names_to_pair(*p), ("scores",))["scores"] > CONFIDENT).sum())
              for p in pairs]
    weak = weak_pairs(pairs, counts, ratio, GATE_MIN_BEST * conf["num_matches"])
    logger.info("pair gate: %d of %d pairs have < %.0f%% of their images' best confident-match "
                "count; they get no matches", len(weak), len(pairs), 100 * ratio)
    return weak


def _paths(conf, pairs, export_dir, features, matches):
    if (features is None or matches is None) and export_dir is None:
        raise ValueError("give export_dir, or both features and matches paths")
    features = Path(features) if features is not None else \
        Path(export_dir, f"feats-{conf['output']}.h5")
    matches = Path(matches) if matches is not None else \
        Path(export_dir, f"{conf['output']}_{Path(pairs).stem}.h5")
    return features, matches


def _finished(features, matches, pairs) -> bool:
    if not (features.is_file() and matches.is_file()):
        return False
    with open_h5(matches) as f:
        done = set(list_groups(f, 2))
    return all(names_to_pair(*p) in done for p in pairs)


def _fixed_keypoints(features_ref, names):
    if features_ref is None:
        return {}
    with open_h5(features_ref) as f:
        return {n: (f[n]["keypoints"][()], f[n]["scores"][()] if "scores" in f[n]
                    else np.ones(len(f[n]["keypoints"]))) for n in names if n in f}


def _match_all(engine, pairs, store, batches, progress):
    """Match every pair not yet in `store`, prefetching the next batches' images."""
    todo = [b for b in batches if any(names_to_pair(*pairs[i]) not in store for i in b)]
    n_todo = sum(names_to_pair(*pairs[i]) not in store for b in todo for i in b)
    logger.info("matching %d of %d pairs (%d already done) in %d batches",
                n_todo, len(pairs), len(pairs) - n_todo, len(todo))
    bar = tqdm(total=n_todo, desc="matching", unit="pair", disable=not progress,
               mininterval=1.0, smoothing=0.1)
    ahead = [engine.prefetch(n for i in b for n in pairs[i]) for b in todo[:2]]
    for k, batch in enumerate(todo):
        if k + 2 < len(todo):
            ahead.append(engine.prefetch(n for i in todo[k + 2] for n in pairs[i]))
        images = {n: fut.result() for n, fut in ahead.pop(0).items()}
        # a partly done batch is rerun whole: same batch, same numbers
        results = engine.match_batch([pairs[i] for i in batch], images)
        for i, res in zip(batch, results):
            key = names_to_pair(*pairs[i])
            if key not in store:
                store.add(key, res)
                bar.update(1)
    bar.close()


def main(conf: dict, pairs, image_dir, export_dir=None, features=None, matches=None,
         features_ref=None, max_kps: int | None = 8192, overwrite: bool = False,
         model=None, progress: bool = True) -> tuple[Path, Path]:
    """Densely match the pairs listed in `pairs` (hloc pairs file) among `image_dir`.

    Writes hloc-format `features` (default export_dir/feats-{output}.h5) and `matches`
    (default export_dir/{output}_{pairs stem}.h5) and returns both paths. Raw matches are
    kept in `{matches stem}-raw/` next to `matches` for resuming. `features_ref`: an
    existing features.h5 whose images keep their keypoints (e.g. localization against a
    reconstruction). `max_kps` caps keypoints per image (None: no cap). `model`: a
    DenseMatcher to use instead of loading `conf["weights"]`.
    """
    conf = make_conf(conf)
    conf["quantize"]["max_kps"] = max_kps
    image_dir = Path(image_dir)
    features, matches = _paths(conf, pairs, export_dir, features, matches)
    names = list_images(image_dir)
    pair_list = read_pairs(pairs, names)
    if not overwrite and _finished(features, matches, pair_list):
        logger.info("skipping matching: %s and %s already hold all %d pairs",
                    features, matches, len(pair_list))
        return features, matches
    used = sorted({n for p in pair_list for n in p})
    sizes = {n: oriented_size(image_dir / safe_name(n)) for n in used}
    net = {n: network_size(*sizes[n], conf["resize"], conf["dfactor"]) for n in used}
    if model is None:
        from .model import load_matcher  # import the network only when matching
        model = load_matcher(conf["weights"], conf["device"])
    device = next(model.parameters()).device
    # settings that change raw matches: a rerun with others must not mix them in
    fingerprint = {k: v for k, v in conf.items() if k not in _NOT_IN_FINGERPRINT}
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    fingerprint["model"] = {"conf": getattr(model, "conf", None), "checksum": checksum}
    raw_dir = matches.with_name(matches.stem + "-raw")
    if overwrite and raw_dir.exists():
        for p in sorted(raw_dir.iterdir()):
            p.unlink()
    store = RawStore(raw_dir, fingerprint, conf["shard_size"])
    engine = Engine(model.eval(), conf, image_dir, device)
    try:
        _match_all(engine, pair_list, store, make_batches(pair_list, net, conf["batch_size"]),
                   progress)
    finally:
        engine.close()
        store.close()
    scales = {n: float(np.mean(np.divide(sizes[n], net[n]))) for n in used}
    fixed = _fixed_keypoints(features_ref, used)
    weak = _gate(store, pair_list, conf)
    empty = {"keypoints0": np.zeros((0, 2)), "keypoints1": np.zeros((0, 2)), "scores": np.zeros(0)}

    def load(i):
        if i in weak:
            return empty
        m = store.load(names_to_pair(*pair_list[i]))
        if keeps_unrefined(conf["keep_unrefined"], int(m["refined"].sum())):
            return m
        return {k: v[m["refined"]] for k, v in m.items()}

    with atomic_path(features) as tf, atomic_path(matches) as tm:
        with h5py.File(tf, "w") as ff, h5py.File(tm, "w") as fm:
            stats = quantize(pair_list, load, sizes, ff, fm, conf["quantize"], scales, fixed,
                             progress)
            fm.attrs.update(stats)
    store.close()
    return features, matches
