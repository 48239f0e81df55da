"""Before/after self-training, side by side in one run.

    python -m bench.selftrain_eval --before W0.pt --after W1.pt [--also control=W2.pt ...]
        [--out outputs/selftrain_eval] [--sections quality pairs homography synthetic sfm]
        [--max-pairs 6] [--synthetic-pairs 6]

`--also NAME=W.pt`: more weights in the same tables, e.g. a control trained as long from
`before` on the synthetic mixture alone, so that what self-training adds can be told apart
from what more training steps add.

Sections (each reuses `recon_match.evaluation.suites`, so the numbers are the suites'):
- quality: label precision at 1/3/5 px and labels per pair of the labelling on a rendered
  video with exact ground truth (raw candidates, filtered nearby pairs, propagated pairs),
  with SIFT alone and with each model + SIFT;
- pairs: relative pose AUC@5/10/20 on pairs of the GT scenes under data/scenes;
- homography: EVD AUC@3/5/10 px and success;
- synthetic: the held-out synthetic validation (PCK@1/3/5 on covisible pixels);
- sfm: dense SfM (the main job) of the GT scenes under data/scenes, COLMAP SIFT once beside.
OpenCV SIFT rows are computed once as the reference. Prints tables, writes OUT/results.json.
"""

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from recon_match.evaluation.suites import homography, pairs, scenes, synthetic
from recon_match.evaluation.suites.base import (
    COLMAP_SIFT,
    DEFAULT_DATA_ROOT,
    OPENCV_SIFT,
    OURS,
    Context,
    SuiteSkipped,
    image_dir,
    scene_folders,
)
from recon_match.imageio import list_images
from recon_match.evaluation.suites.matchers import DensePairMatcher, SiftPairMatcher
from recon_match.fileio import atomic_path
from recon_match.model import load_matcher
from recon_match.selftrain.quality import label_quality, render_video

ROOT = Path(__file__).resolve().parents[1]
NATURAL_TRAIN = DEFAULT_DATA_ROOT / "natural" / "train"
logger = logging.getLogger("bench.selftrain_eval")


def quality_section(models, args):
    conf = {"frames": args.quality_frames, "seed": args.seed,
            "textures": str(NATURAL_TRAIN) if NATURAL_TRAIN.is_dir() else None}
    labelling = {"propagate": {"min_gap": args.min_gap}}
    video = render_video(conf)
    rows = {"sift only": label_quality(None, conf, {**labelling, "label": {"use_model": False}}, video)}
    for name, model in models.items():
        rows[f"{name} + sift"] = label_quality(model, conf, labelling, video)
    return rows


def pairs_section(models, args):
    conf = {**pairs.default_conf, "max_pairs": args.max_pairs}
    ctx = Context(out=args.out / "work", data_root=args.data_root, scenes_root=None)
    scenes = pairs.scene_pairs(ctx, conf)
    if not scenes:
        raise SuiteSkipped(f"no GT scenes under {args.data_root}/scenes")
    out = {}
    for name, images, gt, scene_pairs in scenes:
        out[name] = {}
        with SiftPairMatcher(images, conf["sift"]) as sift:
            out[name][OPENCV_SIFT] = pairs.evaluate_method(sift, gt, scene_pairs, conf, f"{name} sift")
        for tag, model in models.items():
            with DensePairMatcher(model, images, conf["dense"]) as dense:
                out[name][tag] = pairs.evaluate_method(dense, gt, scene_pairs, conf, f"{name} {tag}")
    return out


def homography_section(models, args):
    conf = dict(homography.default_conf)
    ctx = Context(out=args.out / "work", data_root=args.data_root, scenes_root=None)
    out = {}
    for folder in homography.datasets(ctx):
        items = homography.read_pairs(folder)
        out[folder.name] = {}
        with SiftPairMatcher(folder, conf["sift"]) as sift:
            out[folder.name][OPENCV_SIFT] = homography.evaluate_method(sift, folder, items, conf, "sift")
        for tag, model in models.items():
            with DensePairMatcher(model, folder, conf["dense"]) as dense:
                out[folder.name][tag] = homography.evaluate_method(dense, folder, items, conf, tag)
    if not out:
        raise SuiteSkipped(f"no homography dataset under {args.data_root}/homography")
    return out


def synthetic_section(models, args):
    conf = {"quick_pairs_per_generator": args.synthetic_pairs}
    out = {}
    for tag, model in models.items():
        ctx = Context(out=args.out / "work", data_root=args.data_root, scenes_root=None, quick=True,
                      _model=model)
        res = synthetic.run(ctx, conf)
        for group, methods in res.items():
            out.setdefault(group, {})[tag] = methods[OURS]
            out[group].setdefault(OPENCV_SIFT, methods.get(OPENCV_SIFT))
    return out


def sfm_section(models, args):
    ctx = Context(out=args.out / "work", data_root=args.data_root, scenes_root=None)
    found = [(name, folder) for name, folder, _ in scene_folders(ctx, need_gt=True)]
    if not found:
        raise SuiteSkipped(f"no GT scenes under {args.data_root}/scenes")
    conf, out = dict(scenes.default_conf), {}
    for name, folder in found:
        images, work = image_dir(folder), args.out / "work" / "sfm" / name
        names, gt = list_images(images), folder / "gt"
        out[name] = {COLMAP_SIFT: scenes.run_sift(ctx, images, names, gt, work / "sift", conf)}
        for tag, model in models.items():
            run_ctx = Context(out=ctx.out, data_root=args.data_root, scenes_root=None, _model=model)
            out[name][tag] = scenes.run_dense(run_ctx, images, names, gt, work / tag, conf)
    return out


SECTIONS = {"quality": quality_section, "pairs": pairs_section, "homography": homography_section,
            "synthetic": synthetic_section, "sfm": sfm_section}
COLUMNS = {"quality": ["pairs", "labels_per_pair", "p@1", "p@3", "p@5"],
           "pairs": ["auc@5", "auc@10", "auc@20", "matches", "pairs"],
           "homography": ["auc@3px", "auc@5px", "auc@10px", "success", "matches"],
           "synthetic": ["pairs", "epe", "pck1", "pck3", "pck5", "match_precision"],
           "sfm": ["registered", "images", "auc@1", "auc@5", "auc@10", "median_rot_deg", "points3D",
                   "track_length", "seconds"]}


def print_table(section, result):
    cols = COLUMNS[section]
    print(f"\n## {section}\n")
    print("| dataset | method | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for dataset, methods in result.items():
        if section == "quality":  # {matcher: {kind: metrics}}
            for kind, m in methods.items():
                print(f"| {dataset} | {kind} | " + " | ".join(_fmt(m.get(c)) for c in cols) + " |")
            continue
        for method, m in methods.items():
            if m:
                print(f"| {dataset} | {method} | " + " | ".join(_fmt(m.get(c)) for c in cols) + " |")


def _fmt(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else (f"{v:.1f}" if isinstance(v, float) else str(v))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="weights before self-training")
    p.add_argument("--after", required=True, help="weights after self-training")
    p.add_argument("--also", nargs="+", default=[], metavar="NAME=W.pt",
                   help="more weights side by side (e.g. control=W.pt trained on synthetic pairs alone)")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "selftrain_eval")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--max-pairs", type=int, default=6, help="pose pairs per GT scene")
    p.add_argument("--synthetic-pairs", type=int, default=6, help="synthetic pairs per generator")
    p.add_argument("--quality-frames", type=int, default=40)
    p.add_argument("--min-gap", type=int, default=10, help="propagated pairs in the quality check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    paths = {"before": args.before, "after": args.after}
    for item in args.also:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or name in paths:
            p.error(f"--also takes distinct NAME=W.pt items, got {item!r}")
        paths[name] = path
    models = {tag: load_matcher(path, "cpu") for tag, path in paths.items()}
    doc = {**{tag: str(path) for tag, path in paths.items()}, "sections": {}, "seconds": {}}
    for name in args.sections:
        t0 = time.time()
        try:
            doc["sections"][name] = SECTIONS[name](models, args)
        except SuiteSkipped as e:
            logger.warning("%s skipped: %s", name, e)
            continue
        doc["seconds"][name] = round(time.time() - t0, 1)
        print_table(name, doc["sections"][name])
        with atomic_path(args.out / "results.json") as tmp:
            tmp.write_text(json.dumps(doc, indent=1, default=float))
    print(f"\nwrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
