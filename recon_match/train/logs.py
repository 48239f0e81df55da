"""Training logs: `log.csv` (losses per logged step), `val.csv` (long format: step, group,
metric, value) and PNG plots of both (matplotlib, Agg backend, no display needed)."""

import csv
from pathlib import Path

from ..fileio import atomic_path

LOSS_COLUMNS = ["step", "pairs_seen", "lr", "pairs_per_s", "total", "coarse", "mid", "fine",
                "cert_mid", "cert_fine"]
VAL_COLUMNS = ["step", "group", "metric", "value"]


def _read(path):
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def truncate_after(path, step):
    """Drop rows logged after `step` (a resumed run re-logs them exactly)."""
    rows = [r for r in _read(path) if int(r["step"]) <= step]
    if not Path(path).is_file():
        return
    columns = LOSS_COLUMNS if Path(path).name == "log.csv" else VAL_COLUMNS
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def append_rows(path, rows, columns):
    new = not Path(path).is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, columns)
        if new:
            w.writeheader()
        w.writerows(rows)


def plot(out_dir):
    """losses.png and val.png from the CSV logs of `out_dir` (skipped while empty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    rows = _read(out_dir / "log.csv")
    if rows:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        steps = [int(r["step"]) for r in rows]
        for c in LOSS_COLUMNS[4:]:
            ax.plot(steps, [float(r[c]) for r in rows], label=c, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        with atomic_path(out_dir / "losses.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
    vals = _read(out_dir / "val.csv")
    if vals:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        series = {}
        for r in vals:
            if r["metric"] in ("pck1", "pck3", "pck5") and r["group"] in ("all", "styles_held_out"):
                series.setdefault(f'{r["group"]} {r["metric"]}', []).append((int(r["step"]), float(r["value"])))
        for name, pts in sorted(series.items()):
            ax.plot(*zip(*pts), marker="o", ms=3, label=name)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        with atomic_path(out_dir / "val.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
