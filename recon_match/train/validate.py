"""Score any weights on a training config's fixed validation set (the numbers of `val.csv`).

    python -m recon_match.train.validate W.pt [W2.pt ...] [--config configs/train_stage2.json] [--json out.json]

Weights from another run (e.g. a `recon-match selftrain` branch) are compared with the main
run on the very same held-out pairs; prints the model card's validation table for each file.
"""

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch

from ..fileio import atomic_path
from ..model.loading import model_from_file, read_torch_file
from .config import read_conf
from .trainer import Trainer

GROUPS_FIRST = ["all", "gen/homography", "gen/lifting", "gen/multi_instance"]


def validate(weights, conf) -> dict:
    """{group: {metric: value}} of `weights` on the validation set of train config `conf`."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(Path(tmp) / "run", {**conf, "num_workers": 0, "ema_decay": 0.0})
        trainer.net.load_state_dict(model_from_file(read_torch_file(weights), weights).state_dict())
        return trainer.validate(trainer.net)


def table(summary: dict) -> str:
    groups = [g for g in GROUPS_FIRST if g in summary]
    groups += sorted(g for g in summary if g.startswith("style/")) + \
        [g for g in ("styles_held_out", "styles_seen") if g in summary]
    lines = ["| group | pairs | EPE px | PCK@1 | PCK@3 | PCK@5 | prec@0.8 | cov@0.8 |", "|---" * 8 + "|"]
    for g in groups:
        m = summary[g]
        lines.append(f"| {g} | {int(m['pairs'])} | {m['epe']:.1f} | {m['pck1']:.3f} | {m['pck3']:.3f} | "
                     f"{m['pck5']:.3f} | {m['prec@0.8']:.3f} | {m['cov@0.8']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="shipped weights or training checkpoints")
    parser.add_argument("--config", default="configs/train_stage2.json",
                        help="train config whose validation set is used")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write {weights: summary} here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    conf = read_conf(args.config)
    results = {}
    for w in args.weights:
        results[w] = validate(w, conf)
        print(f"\n{w}: validation PCK@3 {results[w]['all']['pck3']:.3f}\n\n{table(results[w])}")
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
