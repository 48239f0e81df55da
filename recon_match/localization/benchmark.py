"""Localization benchmark: our dense matcher (pairwise, and Lift3D: query to lifted 3D point
descriptors) vs OpenCV SIFT, same maps, same pose solver.

Datasets
- `aerial` (sample scene): the grid-flight references with their GT poses form the map,
  `queries/` are localized (references chosen by the noisy GPS in `gps.csv`).
- every scene in `../shared/data/scenes/*` with `gt/`: leave-out — every 4th view is held
  back as a query, the map is built from the others (references by a GT position prior).
- `+thermal` / `+night`: the same queries re-rendered with `recon_match.data.styles`.

Maps are triangulated from COLMAP SIFT matches at the ground-truth poses
(`recon_match.localization.mapping`), so both methods localize against the very same 3D
points, the map carries no SfM error, and it is already in the GT frame (the similarity
alignment to GT is the identity). Both methods get the GT intrinsics of each query.

`run_localization_suite(out_dir, ...)` returns {dataset: {method: metrics}} for
`recon-match evaluate`; `python -m bench.localization --out DIR` prints the table and
writes DIR/localization.json.
"""

import logging
from pathlib import Path

import numpy as np
import pycolmap
from PIL import Image

from recon_match.data.styles import STYLE_FUNCS
from recon_match.evaluation import load_model
from recon_match.fileio import atomic_path
from recon_match.imageio import list_images, read_image
from recon_match.localization import localizer
from recon_match.localization.mapping import triangulate_known_poses
from recon_match.localization.pose import pose_error

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SHARED_SCENES = ROOT.parent / "shared" / "data" / "scenes"
THRESHOLDS = ((0.25, 2.0), (0.5, 5.0), (5.0, 10.0))  # (metres, degrees)
METHODS = {"recon-match": "dense", "recon-match-lift3d": "lift3d", "opencv_sift": "sift"}
STYLES = ("none", "thermal", "night")


def _gt_cameras(gt, names):
    return {n: gt.cameras[gt.find_image_with_name(n).camera_id] for n in names}


def prepare_aerial(work: Path, max_queries=None) -> dict:
    from recon_match.render.sample import ensure_sample_scene
    scene = Path(ensure_sample_scene("aerial"))
    gt_refs, gt_q = load_model(scene / "gt"), load_model(scene / "queries_gt")
    refs = sorted(im.name for im in gt_refs.images.values())
    queries = list_images(scene / "queries")[:max_queries]
    triangulate_known_poses(gt_refs, refs, scene / "images", work / "map")
    return {"name": "aerial", "model": work / "map" / "model", "images": scene / "images",
            "query_dir": scene / "queries", "queries": queries, "gt": gt_q,
            "cameras": _gt_cameras(gt_q, queries), "pairs": "gps", "gps": scene / "gps.csv"}


def prepare_leave_out(scene: Path, work: Path, every: int = 4) -> dict:
    """Every `every`-th view (from the second on) becomes a query; the rest make the map.

    References are chosen by a position prior (the GT camera centres written as a GPS file),
    so the comparison measures matching and pose, not retrieval.
    """
    gt = load_model(scene / "gt")
    names = sorted(im.name for im in gt.images.values())
    queries = names[1::every]
    refs = [n for n in names if n not in queries]
    triangulate_known_poses(gt, refs, scene / "images", work / "map")
    gps = work / "positions.csv"
    with atomic_path(gps) as tmp:
        tmp.write_text("".join(f"{n},{','.join(f'{v:.6f}' for v in gt.find_image_with_name(n).projection_center())}\n"
                               for n in names))
    return {"name": scene.name, "model": work / "map" / "model", "images": scene / "images",
            "query_dir": scene / "images", "queries": queries, "gt": gt,
            "cameras": _gt_cameras(gt, queries), "pairs": "gps", "gps": gps}


def styled_queries(dataset: dict, style: str, work: Path, seed: int = 0) -> Path:
    """Write the queries re-rendered in `style` (deterministic per query) under `work`."""
    out = work / f"queries_{style}"
    for i, name in enumerate(dataset["queries"]):
        path = out / name
        if path.is_file():
            continue
        rng = np.random.default_rng(seed * 7919 + i)
        img = STYLE_FUNCS[style](rng, read_image(dataset["query_dir"] / name), {})
        with atomic_path(path) as tmp:
            Image.fromarray(img).save(tmp, format=Image.registered_extensions()[path.suffix.lower()],
                                      **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    return out


def metrics(log: dict, gt: pycolmap.Reconstruction, names) -> dict:
    """Recall (%) at THRESHOLDS, median errors (not-localized = inf), seconds per query."""
    errs = []
    for n in names:
        e = log[n]
        if not e["localized"]:
            errs.append((np.inf, np.inf))
            continue
        q = e["qvec"]
        T = pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([q[1], q[2], q[3], q[0]])), np.array(e["tvec"]))
        errs.append(pose_error(T, gt.find_image_with_name(n).cam_from_world()))
    errs = np.array(errs, np.float64).reshape(-1, 2)
    out = {f"recall@{t}m,{r:g}deg": 100.0 * float(np.mean((errs[:, 0] <= t) & (errs[:, 1] <= r)))
           for t, r in THRESHOLDS}
    med = np.median(errs, 0) if len(errs) else (np.inf, np.inf)
    finite = [float(m) if np.isfinite(m) else None for m in med]  # None: most queries failed
    out.update(localized=100.0 * float(np.mean([log[n]["localized"] for n in names])),
               median_center_error=finite[0], median_rotation_error_deg=finite[1],
               seconds_per_query=float(np.mean([log[n]["seconds"] for n in names])),
               num_queries=len(names))
    return out


def run_dataset(dataset: dict, work: Path, methods, styles, num_pairs: int, net) -> dict:
    results = {}
    for style in styles:
        qdir = dataset["query_dir"] if style == "none" else styled_queries(dataset, style, work)
        key = dataset["name"] if style == "none" else f"{dataset['name']}+{style}"
        for method in methods:
            conf = {"matcher": METHODS[method], "pairs": dataset["pairs"], "num_pairs": num_pairs}
            log = localizer.main(conf, dataset["model"], qdir, work / f"out_{method}_{style}",
                                 image_dir=dataset["images"], queries=dataset["queries"],
                                 cameras=dataset["cameras"], gps=dataset["gps"], net=net)
            results.setdefault(key, {})[method] = metrics(log, dataset["gt"], dataset["queries"])
            logger.info("%s %s: %s", key, method, results[key][method])
    return results


def run_localization_suite(out_dir, scenes_root=SHARED_SCENES, methods=tuple(METHODS),
                           styles=STYLES, num_pairs: int | None = None, quick: bool = False,
                           net=None) -> dict:
    """{dataset: {method: metrics}} for the aerial sample scene and every GT scene in
    `scenes_root` (skipped with a log line when absent). `quick`: aerial only, no styles,
    at most 4 queries. `num_pairs`: references per query, by default the localizer's (what
    `recon-match localize` users get). Work files (maps, logs) go to `out_dir/localization/`."""
    if net is None:
        from recon_match.model import load_matcher
        net = load_matcher()
    work = Path(out_dir) / "localization"
    styles = ("none",) if quick else tuple(styles)
    datasets = [prepare_aerial(work / "aerial", max_queries=4 if quick else None)]
    scenes_root = Path(scenes_root) if scenes_root else None
    if quick:
        logger.info("quick mode: aerial sample scene only")
    elif scenes_root and scenes_root.is_dir():
        for scene in sorted(p for p in scenes_root.iterdir() if (p / "gt").is_dir()):
            datasets.append(prepare_leave_out(scene, work / scene.name))
    else:
        logger.info("no scenes at %s: leave-out localization skipped", scenes_root)
    num_pairs = num_pairs or localizer.default_conf["num_pairs"]
    results = {}
    for ds in datasets:
        results.update(run_dataset(ds, work / ds["name"], methods, styles, num_pairs, net))
    return results


def _num(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def format_table(results: dict) -> str:
    cols = [f"recall@{t}m,{r:g}deg" for t, r in THRESHOLDS]
    head = ("| dataset | method | " + " | ".join(f"{t} m, {r:g}°" for t, r in THRESHOLDS)
            + " | localized | median m | median ° | s/query |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for ds, per in results.items():
        for m, v in per.items():
            lines.append(f"| {ds} | {m} | " + " | ".join(f"{v[c]:.1f}" for c in cols)
                         + f" | {v['localized']:.0f}% | {_num(v['median_center_error'])} | "
                         f"{_num(v['median_rotation_error_deg'])} | {v['seconds_per_query']:.1f} |")
    return "\n".join(lines)
