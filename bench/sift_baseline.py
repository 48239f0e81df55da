"""SfM baselines on scenes with ground truth: one `recon-match sfm` run per (scene, matcher).

    python -m bench.sift_baseline [--scenes object aerial middlebury_dino ...]
                                  [--matchers sift dense] [--sift-resize 1600]
                                  [--out outputs/bench_sfm] [--overwrite]

Scenes are sample scene names (`object`, `aerial`, rendered on first use), names under
`../shared/data/scenes`, or paths to folders holding `images/` and `gt/`. Each run goes
through the real command line into `OUT/<scene>/<matcher>/`; complete runs are reused unless
`--overwrite`. Prints a table and writes `OUT/results.json`.
"""

import argparse
import json
import logging
from pathlib import Path

from pipelines import cli
from recon_match.fileio import atomic_path
from recon_match.sfm import is_complete, read_stats

ROOT = Path(__file__).resolve().parents[1]
SHARED_SCENES = ROOT.parent / "shared" / "data" / "scenes"
SAMPLE_SCENES = ("object", "aerial")
DEFAULT_SCENES = SAMPLE_SCENES + ("middlebury_dino", "strecha_fountain_p11", "strecha_herzjesu_p8")

logger = logging.getLogger("bench.sift_baseline")


def resolve_scene(name) -> Path | None:
    """Folder with images/ and gt/ for `name`, or None (logged) when unavailable."""
    if name in SAMPLE_SCENES:
        try:
            from recon_match.render.sample import ensure_sample_scene
        except ImportError as e:
            logger.warning("sample scene %s unavailable (%s); skipped", name, e)
            return None
        return ensure_sample_scene(name)
    path = Path(name) if Path(name).is_dir() else SHARED_SCENES / name
    if not (path / "images").is_dir():
        logger.warning("scene %s not found at %s; skipped", name, path)
        return None
    return path


def matcher_args(matcher, args) -> list[str]:
    """Extra `recon-match sfm` options per matcher (the place to tune one side)."""
    if matcher == "sift":
        return ["--resize", str(args.sift_resize)]  # only downscales larger images
    return []


def run_one(scene: Path, matcher: str, out: Path, args) -> dict:
    argv = ["sfm", str(scene / "images"), "--out", str(out), "--matcher", matcher,
            *matcher_args(matcher, args)]
    if (scene / "gt").is_dir():
        argv += ["--gt", str(scene / "gt")]
    if args.overwrite:
        argv.append("--overwrite")
    rc = cli.main(argv)
    if rc != 0 and not is_complete(out):
        return {"error": f"exit code {rc}"}
    return read_stats(out / "stats.json")


def row(scene_name, matcher, stats) -> dict:
    gt = stats.get("gt") or {}
    return {
        "scene": scene_name, "matcher": matcher,
        "registered": stats.get("registered"), "images": stats.get("images"),
        **{f"auc@{t}": gt.get("auc", {}).get(t) for t in ("1", "3", "5", "10")},
        "median_rot_deg": gt.get("median_rotation_error_deg"),
        "points3D": stats.get("points3D"), "track_length": stats.get("mean_track_length"),
        "seconds": stats.get("seconds"), "error": stats.get("error"),
    }


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(rows):
    head = (f"{'scene':<22} {'matcher':<8} {'reg':>7} {'AUC@1':>6} {'@3':>6} {'@5':>6} "
            f"{'@10':>6} {'rot°':>6} {'points':>7} {'track':>5} {'sec':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        reg = f"{r['registered']}/{r['images']}" if r["images"] else "-"
        print(f"{r['scene']:<22} {r['matcher']:<8} {reg:>7} "
              + " ".join(_fmt(r[f"auc@{t}"], "6.1f") for t in ("1", "3", "5", "10"))
              + f" {_fmt(r['median_rot_deg'], '6.2f')} {_fmt(r['points3D'], '7d')}"
              f" {_fmt(r['track_length'], '5.2f')} {_fmt(r['seconds'], '7.1f')}"
              + (f"  ERROR {r['error']}" if r["error"] else ""))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenes", nargs="+", default=list(DEFAULT_SCENES))
    p.add_argument("--matchers", nargs="+", default=["sift"], choices=["sift", "dense"])
    p.add_argument("--sift-resize", type=int, default=1600,
                   help="SIFT max_image_size (the Strecha scenes are 3072 px wide)")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_sfm")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s",
                        datefmt="%H:%M:%S")
    rows = []
    for name in args.scenes:
        scene = resolve_scene(name)
        if scene is None:
            continue
        for matcher in args.matchers:
            stats = run_one(scene, matcher, args.out / scene.name / matcher, args)
            rows.append(row(scene.name, matcher, stats))
    print_table(rows)
    with atomic_path(args.out / "results.json") as tmp:
        tmp.write_text(json.dumps({"sift_resize": args.sift_resize, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
