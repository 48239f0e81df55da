"""The pseudo-label store: one `<clip>.npz` per video clip, written atomically.

A clip file holds every labelled pair of the clip, nearby (kind 0) and propagated (kind 1):

    pairs    P x 2 int32    frame indices (into `frames`) of image0 and image1
    kind     P uint8        0 = nearby pair labelled directly, 1 = propagated
    offsets  P + 1 int64    pair p owns rows offsets[p]:offsets[p + 1] of the arrays below
    kp0, kp1 M x 2 float32  pixel coordinates (pixel-centre convention) in the full frames
    conf     M float32      confidence in (0, 1]
    frames   F str          frame file names relative to the clip folder
    meta     str (JSON)     clip, model hash, configs, label version, seconds

Labelling is resumable: a clip whose file exists and was labelled by the same weights with
the same settings is skipped; a file made by other weights (an earlier self-training round)
is stale and is labelled again.
"""

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..fileio import atomic_path, safe_name
from ..imageio import list_images, read_image
from ..config import merge_conf
from . import label, propagate

logger = logging.getLogger(__name__)

LABEL_VERSION = 1
KINDS = {"nearby": 0, "propagated": 1}
default_conf = {"label": label.default_conf, "propagate": propagate.default_conf}


def model_hash(model):
    """Short SHA-256 of a model's weights (names, shapes and values); "none" without a model.
    Hashing the tensors (not a file) also versions in-memory and freshly initialised models."""
    if model is None:
        return "none"
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def settings_key(model_id, conf):
    """What a clip file must match to be reused: the labelling model, settings and version."""
    return {"model": model_id, "conf": json.loads(json.dumps(conf, sort_keys=True)), "version": LABEL_VERSION}


def list_clips(video_root):
    """Sorted clip folder names (sub-folders holding images) of `video_root`."""
    root = Path(video_root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root}")
    clips = sorted(p.name for p in root.iterdir() if p.is_dir() and list_images(p))
    if not clips:
        raise ValueError(f"no clips (sub-folders with images) in {root}")
    return clips


def write_clip(path, clip, frames, pairs, key, seconds):
    """Write the labels {(i, j, kind): labels} of one clip atomically."""
    items = sorted(pairs.items())
    counts = [len(lab["kp0"]) for _, lab in items]
    cat = (lambda k, shape: np.concatenate([lab[k] for _, lab in items]) if items
           else np.zeros(shape, np.float32))
    meta = {**key, "clip": clip, "seconds": seconds, "num_frames": len(frames)}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, pairs=np.array([[i, j] for (i, j, _), _ in items], np.int32).reshape(-1, 2),
                 kind=np.array([k for (_, _, k), _ in items], np.uint8),
                 offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                 kp0=cat("kp0", (0, 2)), kp1=cat("kp1", (0, 2)), conf=cat("conf", (0,)),
                 frames=np.array(frames, dtype=str), meta=np.array(json.dumps(meta)))


def read_clip(path):
    """Read a clip file -> dict of its arrays with `meta` parsed (RuntimeError naming the file)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        out["meta"] = json.loads(str(out["meta"]))
        out["frames"] = [str(f) for f in out["frames"]]
    except (OSError, ValueError, KeyError) as e:
        raise RuntimeError(f"cannot read label file {path}: {e}") from e
    return out


def is_current(path, key):
    """True when `path` holds labels made with `key` (same model, settings and version)."""
    if not Path(path).is_file():
        return False
    try:
        meta = read_clip(path)["meta"]
    except RuntimeError as e:
        logger.warning("%s; labelling again", e)
        return False
    return all(meta.get(k) == v for k, v in key.items())


def clip_stats(data):
    n = np.diff(data["offsets"])
    return {"frames": len(data["frames"]), "nearby_pairs": int((data["kind"] == 0).sum()),
            "propagated_pairs": int((data["kind"] == 1).sum()),
            "nearby_labels": int(n[data["kind"] == 0].sum()), "propagated_labels": int(n[data["kind"] == 1].sum())}


def total_stats(stats: dict) -> dict:
    """`clip_stats` summed over the clips of {clip: stats} (as `label_videos` returns)."""
    return {k: sum(s[k] for s in stats.values()) for k in next(iter(stats.values()))}


def label_clip_frames(images, model, conf):
    """Label one clip given its frames -> {(i, j, kind): labels} (nearby + propagated)."""
    conf = merge_conf(default_conf, conf, "labelling", nested=("label", "propagate"))
    nearby = label.FrameLabeller(model, conf["label"]).label_clip(images)
    far = propagate.propagate(nearby, len(images), conf["propagate"])
    return {**{(i, j, 0): v for (i, j), v in nearby.items()}, **{(i, j, 1): v for (i, j), v in far.items()}}


def label_videos(video_root, out_dir, model, conf, clips=None, max_frames=None, progress=True):
    """Label every clip of `video_root` into `out_dir/<clip>.npz`, skipping current files.

    conf: {"label": ..., "propagate": ...} overrides of `default_conf`.
    max_frames: use only the first N frames of each clip (None = all).
    Returns {clip: stats} for all requested clips (labelled now or before).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.npz.tmp*"):  # left by a killed run (atomic_path cleans the rest)
        stale.unlink(missing_ok=True)
    conf = merge_conf(default_conf, conf, "labelling", nested=("label", "propagate"))
    clips = list_clips(video_root) if clips is None else [safe_name(c, "clip") for c in clips]
    # SIFT-only labels do not depend on the model: they stay current across rounds
    model_id = model_hash(model) if conf["label"]["use_model"] else "none"
    key = settings_key(model_id, {**conf, "max_frames": max_frames})
    stats = {}
    for clip in tqdm(clips, desc="label clips", unit="clip", disable=not progress):
        path = out_dir / f"{clip}.npz"
        if not is_current(path, key):
            names = list_images(Path(video_root) / clip)[:max_frames]
            images = [read_image(Path(video_root) / clip / n) for n in names]
            t0 = time.time()
            pairs = label_clip_frames(images, model, conf)
            write_clip(path, clip, names, pairs, key, time.time() - t0)
            logger.info("labelled %s: %s", clip, clip_stats(read_clip(path)))
        stats[clip] = clip_stats(read_clip(path))
    return stats
