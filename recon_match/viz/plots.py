"""Plots as PNG: training curves and validation metrics from a CSV log, and bar charts of results.

matplotlib is used through its object API on an Agg canvas (no pyplot, no global backend
switch), so plotting works on machines without a display and from any thread.
"""

import csv
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from recon_match.fileio import atomic_path


def read_log(path) -> dict:
    """Read a CSV training log into {column: float array}; empty or non-numeric cells are NaN
    (validation metrics usually appear only on some rows)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training log does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: training log has no rows")
    return {k: np.array([_float(r.get(k)) for r in rows]) for k in rows[0] if k}


def _float(cell) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return math.nan


def _panels(log: dict, x: str) -> list:
    """Group columns: losses, validation metrics (`val_*`; shares in [0, 1] such as PCK apart
    from metrics in other units such as pixel errors), learning rate."""
    cols = [k for k in log if k != x and np.isfinite(log[k]).any()]
    val = [k for k in cols if k.startswith("val_")]
    share = [k for k in val if np.nanmin(log[k]) >= 0 and np.nanmax(log[k]) <= 1]
    other = [k for k in val if k not in share]
    loss = [k for k in cols if "loss" in k and k not in val]
    lr = [k for k in cols if k in ("lr", "learning_rate")]
    return [(title, keys) for title, keys in
            (("training loss", loss), ("validation", share), ("validation", other),
             ("learning rate", lr)) if keys]


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def plot_training(log_path, out_path, x: str = "step") -> Path:
    """Plot a training log (CSV with a `step` column; loss columns contain "loss", validation
    columns start with "val_", optional `lr`) as one panel per group; write a PNG."""
    log = read_log(log_path)
    if x not in log:
        raise ValueError(f"{log_path}: no {x!r} column (columns: {sorted(log)})")
    panels = _panels(log, x)
    if not panels:
        raise ValueError(f"{log_path}: no loss, val_* or lr columns to plot")
    fig = Figure(figsize=(5 * len(panels), 3.6))
    for i, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for k in keys:
            ok = np.isfinite(log[k]) & np.isfinite(log[x])
            ax.plot(log[x][ok], log[k][ok], label=k, marker="o" if ok.sum() < 30 else None)
        positive = all((log[k][np.isfinite(log[k])] > 0).all() for k in keys)
        if title != "validation" and positive:
            ax.set_yscale("log")  # losses and learning rates span decades
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_path)


def plot_bars(results: dict, out_path, title: str = "", ylabel: str = "") -> Path:
    """Grouped bar chart: results = {method: {metric: value}}, e.g. pose AUC@5/10/20 per
    method. Metrics missing for a method are left out; writes a PNG."""
    methods = list(results)
    metrics = list(dict.fromkeys(m for r in results.values() for m in r))
    if not methods or not metrics:
        raise ValueError("plot_bars needs at least one method with one metric")
    fig = Figure(figsize=(max(5, 1.2 * len(metrics) * len(methods) ** 0.5 + 2), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        vals = [results[method].get(m, math.nan) for m in metrics]
        xs = np.arange(len(metrics)) + (i - (len(methods) - 1) / 2) * width
        bars = ax.bar(xs, vals, width, label=method)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_path)
