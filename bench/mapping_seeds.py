"""How much an SfM result depends on the mapper's random seed, on fixed verified matches.

Runs pycolmap's incremental mapping on the `database.db` of finished `recon-match sfm` (or
scenes-suite) output folders with seeds 0..K-1 and reports, per seed, the registered images
and, with `--gt`, pose AUC@5 and the median rotation error. On weakly connected scenes the
outcome hinges on the initial pair and RANSAC draws, so a single run can mislead: compare
methods over seeds.

    python -m bench.mapping_seeds RUN_DIR [RUN_DIR ...] --images DIR [--gt GT_DIR] [--seeds 4]
        [--fixed-intrinsics] [--out results.json]

`--fixed-intrinsics`: the run used known intrinsics (`--camera`), kept fixed by the mapper.

Prints a table and, with `--out`, writes the rows as JSON.
"""

import argparse
import json
import tempfile
from pathlib import Path

from recon_match.evaluation import evaluate, load_model
from recon_match.fileio import atomic_path
from recon_match.imageio import list_images
from recon_match.sfm.mapping import run_mapping


def spread(run_dir: Path, images: Path, gt, seeds: int, fixed=False) -> list[dict]:
    db = run_dir / "database.db"
    if not db.is_file():
        raise SystemExit(f"{run_dir}: no database.db (not a finished sfm output folder)")
    names = list_images(images)
    rows = []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as work:
            # no retries: the spread over single seeds is what this measures
            rec, _ = run_mapping(db, images, work, num_images=len(names), seed=seed,
                                 fixed_intrinsics=fixed, retries=0)
        row = {"run": str(run_dir), "seed": seed, "images": len(names),
               "registered": 0 if rec is None else rec.num_reg_images()}
        if gt is not None and rec is not None:
            g = evaluate(rec, gt, names)
            row.update({"auc@5": g["auc"]["5"], "median_rot_deg": g["median_rotation_error_deg"]})
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--gt", type=Path)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--fixed-intrinsics", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    gt = load_model(args.gt) if args.gt else None
    rows = [r for run in args.runs for r in spread(run, args.images, gt, args.seeds, args.fixed_intrinsics)]
    print(f"{'run':<60} {'seed':>4} {'registered':>10} {'AUC@5':>6} {'med rot':>8}")
    for r in rows:
        auc, rot = r.get("auc@5"), r.get("median_rot_deg")
        print(f"{r['run'][-60:]:<60} {r['seed']:>4} {r['registered']:>5}/{r['images']:<4} "
              f"{'–' if auc is None else f'{auc:.1f}':>6} {'–' if rot is None else f'{rot:.3f}':>8}")
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
