"""Localize query images against a reconstruction: `main(conf, model_dir, query_dir, out_dir)`.

Per query: reference selection (retrieval or GPS) -> matching to each reference -> 2D–3D
correspondences through the reference observations with 3D points -> pycolmap absolute pose.
Outputs in `out_dir`: `poses.txt` (hloc/COLMAP `name qw qx qy qz tx ty tz`, world-to-camera,
localized queries only) and `log.json` ({name: entry}, every query, with the failure reason
when not localized). Both are rewritten atomically after each query; a rerun skips queries
already in the log unless `overwrite`.
"""

import hashlib
import json
import logging
import time
from pathlib import Path

from tqdm import tqdm

from ..fileio import atomic_path, safe_name
from ..imageio import ImageError, list_images, read_image
from .camera import parse_camera, query_camera
from .lift3d import Lift3DQueryMatcher
from .matchers import DenseQueryMatcher, SiftQueryMatcher
from ..config import merge_conf
from .pose import aggregate, default_pose_conf, estimate_pose
from .refmap import ReferenceMap
from .renderings import alternative_renderings
from .selection import GpsSelector, RetrievalSelector, read_positions, reference_descriptors

logger = logging.getLogger(__name__)

MATCHERS = ("dense", "sift", "lift3d")

default_conf = {
    "pairs": "retrieval",   # "retrieval" | "gps"
    "num_pairs": 10,        # references matched per query
    "matcher": "dense",     # "dense" | "sift" | "lift3d" (query matched to lifted 3D point descriptors)
    "dense": {},            # DenseQueryMatcher.default_conf overrides
    "lift3d": {},           # Lift3DQueryMatcher.default_conf overrides
    "sift": {},             # SiftQueryMatcher.default_conf overrides
    "pose": {},             # pose.default_pose_conf overrides
    # a query with fewer pose inliers than this is tried again in other grey renderings
    # (`renderings.alternative_renderings`: inverted; for false colour, the hue along a rainbow
    # palette) until one reaches it, and the posed attempt with the most inliers wins. Thermal
    # cameras show hot as white or black, or in a palette, and the wrong reading matches
    # little: a few hundred inliers and a wrong pose at most (fountain thermal query 0001:
    # 194) where the right one gives thousands. 0 = never
    "retry_below": 1000,
}


def write_outputs(out_dir: Path, log: dict) -> None:
    """Write `log.json` and `poses.txt` atomically from the log."""
    with atomic_path(out_dir / "log.json") as tmp:
        tmp.write_text(json.dumps(log, indent=1, sort_keys=True))
    with atomic_path(out_dir / "poses.txt") as tmp, open(tmp, "w", encoding="utf-8") as f:
        for name in sorted(log):
            e = log[name]
            if e.get("localized"):
                f.write(" ".join([name] + [f"{v:.10g}" for v in e["qvec"] + e["tvec"]]) + "\n")


def read_log(out_dir: Path) -> dict:
    path = out_dir / "log.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: damaged log ({e}); rerun with overwrite to start again") from e


def _build_matcher(conf, refmap, image_dir, net):
    if conf["matcher"] == "sift":
        return SiftQueryMatcher(refmap, image_dir, conf["sift"])
    if conf["matcher"] == "lift3d":
        return Lift3DQueryMatcher(net, refmap, image_dir, conf["lift3d"])
    return DenseQueryMatcher(net, refmap, image_dir, conf["dense"])


def weights_signature(net) -> str:
    """A short hash of the network's weights: cached descriptors are valid only for them."""
    h = hashlib.sha1()
    for t in net.state_dict().values():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _selector(conf, refmap, image_dir, net, matcher, out_dir, gps):
    """`select(name, path, handle) -> reference names (or None: no position)` for one query."""
    k = conf["num_pairs"]
    if conf["pairs"] == "gps":
        sel = GpsSelector(refmap, image_dir, read_positions(gps) if gps else None)
        return lambda name, path, handle: sel.select(name, path, k)
    own = isinstance(matcher, DenseQueryMatcher)
    describer = matcher if own else DenseQueryMatcher(net, refmap, image_dir, {"cache_size": 1})

    def describe(image):
        return describer.global_descriptor(describer.prepare(image))

    desc = reference_descriptors(refmap.names, describe, describer.refs.read,
                                 out_dir / "global-descriptors-refs.h5", weights_signature(net))
    sel = RetrievalSelector(refmap.names, desc)
    if own:  # the query's features are already extracted for matching
        return lambda name, path, handle: sel.select(matcher.global_descriptor(handle), k)
    return lambda name, path, handle: sel.select(describe(read_image(path)), k)


def localize_query(path, name, matcher, select, refmap, conf, camera=None, camera_spec=None) -> dict:
    """One query -> log entry. `select(name, path, handle) -> reference names or None`."""
    t0 = time.perf_counter()
    entry = {"localized": False, "references": [], "num_correspondences": 0, "num_inliers": 0}
    try:
        image = read_image(path)
    except ImageError as e:
        return {**entry, "reason": f"unreadable image: {e}", "seconds": time.perf_counter() - t0}
    h, w = image.shape[:2]
    if camera is not None:
        source = "given"
    else:
        camera, source = query_camera(path, w, h, camera_spec, refmap.cameras)
    handle = matcher.prepare(image)
    refs = select(name, path, handle)
    if not refs:
        return {**entry, "reason": "no GPS position for the query", "seconds": time.perf_counter() - t0}

    def solve(h):
        per_ref = [matcher.correspondences(h, r) for r in refs]
        corr = aggregate(per_ref)
        return per_ref, estimate_pose(corr["query_xy"], refmap.points3D(corr["point3D_ids"]), camera,
                                      conf["pose"], estimate_focal=(source == "default"))

    per_ref, res = solve(handle)
    entry["rendering"] = "original"
    if res["num_inliers"] < conf["retry_below"]:
        for kind, alt in alternative_renderings(image).items():
            alt_ref, alt_res = solve(matcher.prepare(alt))
            # a pose beats no pose (an attempt can fail the inlier-ratio check on more inliers)
            if (alt_res["success"], alt_res["num_inliers"]) > (res["success"], res["num_inliers"]):
                per_ref, res, entry["rendering"] = alt_ref, alt_res, kind
            if res["num_inliers"] >= conf["retry_below"]:
                break
    entry.update(references=refs, matches_per_reference=[int(len(c["point3D_ids"])) for c in per_ref],
                 num_correspondences=res["num_correspondences"], num_inliers=res["num_inliers"],
                 reason=res["reason"], camera_source=source)
    if res["success"]:
        T = res["cam_from_world"]
        q = T.rotation.quat  # pycolmap: x, y, z, w
        cam = res["camera"]
        entry.update(localized=True, qvec=[float(q[3]), float(q[0]), float(q[1]), float(q[2])],
                     tvec=[float(v) for v in T.translation],
                     camera={"model": cam.model_name, "width": cam.width, "height": cam.height,
                             "params": [float(p) for p in cam.params]})
    entry["seconds"] = time.perf_counter() - t0
    return entry


def main(conf, model_dir, query_dir, out_dir, image_dir=None, queries=None, camera_spec=None,
         cameras=None, gps=None, net=None, overwrite=False, progress=True) -> dict:
    """Localize every image of `query_dir` (or the names in `queries`) against `model_dir`.

    `image_dir`: the reference images (default: `images/` next to or above the model).
    `camera_spec`: "MODEL,PARAMS" for all queries; `cameras`: {name: pycolmap.Camera}
    per-query intrinsics (benchmarks). `gps`: CSV of positions for `pairs="gps"`.
    `net`: a loaded DenseMatcher (default: `recon_match.model.load_matcher()`).
    Returns the log {name: entry}.
    """
    conf = merge_conf(default_conf, conf, "localization")
    if conf["pairs"] not in ("retrieval", "gps"):
        raise ValueError(f"pairs must be 'retrieval' or 'gps', not {conf['pairs']!r}")
    if conf["matcher"] not in MATCHERS:
        raise ValueError(f"matcher must be one of {MATCHERS}, not {conf['matcher']!r}")
    conf["pose"] = merge_conf(default_pose_conf, conf["pose"], "pose")
    refmap = ReferenceMap.read(model_dir)
    image_dir = Path(image_dir) if image_dir else find_image_dir(model_dir)
    query_dir, out_dir = Path(query_dir), Path(out_dir)
    names = [safe_name(n, "query name") for n in (queries or list_images(query_dir))]
    if camera_spec:
        parse_camera(camera_spec, 100, 100)  # fail before any work on a bad string
    log = {} if overwrite else read_log(out_dir)
    todo = [n for n in names if n not in log]
    logger.info("%d queries (%d already localized or tried), %d reference images",
                len(names), len(names) - len(todo), len(refmap.names))
    if not todo:
        write_outputs(out_dir, log)
        return log
    if net is None and (conf["matcher"] != "sift" or conf["pairs"] == "retrieval"):
        from ..model import load_matcher
        net = load_matcher()
    matcher = _build_matcher(conf, refmap, image_dir, net)
    select = _selector(conf, refmap, image_dir, net, matcher, out_dir, gps)
    for name in tqdm(todo, desc="localize", unit="query", disable=not progress):
        cam = (cameras or {}).get(name)
        log[name] = localize_query(query_dir / name, name, matcher, select, refmap, conf,
                                   camera=cam, camera_spec=camera_spec)
        e = log[name]
        logger.debug("%s: %s (%d inliers / %d)", name, "ok" if e["localized"] else e["reason"],
                     e["num_inliers"], e["num_correspondences"])
        write_outputs(out_dir, log)
    done = sum(log[n]["localized"] for n in names)
    logger.info("localized %d of %d queries; poses in %s", done, len(names), out_dir / "poses.txt")
    return log


def find_image_dir(model_dir) -> Path:
    """Reference images for a model: `images/` in the model folder or one of its parents."""
    p = Path(model_dir).resolve()
    for cand in (p, *list(p.parents)[:3]):
        if (cand / "images").is_dir():
            return cand / "images"
    raise FileNotFoundError(f"{model_dir}: cannot find the reference images; pass them with --images DIR")
