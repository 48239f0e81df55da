"""Tables and plots of the results document: DIR/report.md and the text printed per suite."""

import logging
import math
from pathlib import Path

from ...viz.plots import plot_bars
from ...viz.report import Report

logger = logging.getLogger(__name__)

TITLE = "recon-match evaluation"


def _suite(name):
    from .runner import load_suite
    return load_suite(name)


def suite_rows(name: str, results: dict) -> list[dict]:
    """One row per (dataset, method), columns as the suite's COLUMNS (None: all metrics)."""
    columns = getattr(_suite(name), "COLUMNS", None)
    rows = []
    for dataset, per_method in results.items():
        for method, metrics in per_method.items():
            keys = columns if columns is not None else list(metrics)
            rows.append({"dataset": dataset, "method": method,
                         **{k: _show(metrics.get(k)) for k in keys}})
    return rows


def _show(v):
    return "–" if v is None else v


def status_line(status: dict) -> str:
    s = status.get("status", "not run")
    line = f"*{s}* in {status.get('seconds', 0):.0f} s"
    return line + (f": {status['reason']}" if status.get("reason") else "")


def add_suite(report: Report, name: str, doc: dict, plot_dir: Path | None) -> None:
    status, results = doc["status"].get(name, {}), doc["results"].get(name) or {}
    report.heading(name).text(status_line(status))
    if not results:
        return
    report.table(suite_rows(name, results))
    if plot_dir is not None:
        path = plot(name, results, plot_dir / f"{name}.png")
        if path is not None:
            report.image(path, f"{name}")


def plot(name: str, results: dict, path: Path) -> Path | None:
    """Bar chart of the suite's PLOT metrics: x = (dataset, metric), bars = methods."""
    metrics, ylabel = getattr(_suite(name), "PLOT", (None, ""))
    if not metrics:
        return None
    datasets = getattr(_suite(name), "plot_datasets", lambda r: list(r))(results)
    data = {}
    for dataset in datasets:
        for method, values in results[dataset].items():
            for m in metrics:
                v = values.get(m)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    label = dataset if len(metrics) == 1 else f"{dataset}\n{m}"
                    data.setdefault(method, {})[label] = v
    if not data:
        return None
    try:
        return plot_bars(data, path, title=name, ylabel=ylabel)
    except ValueError as e:
        logger.warning("no plot for %s: %s", name, e)
        return None


def _meta_text(meta: dict) -> str:
    w = meta.get("weights", {})
    weights = w.get("path", "?") if w.get("exists", True) else f"untrained (no {w.get('path')})"
    return (f"Mode: {'quick' if meta.get('quick') else 'full'}; weights: `{weights}`; "
            f"data root: `{meta.get('data_root')}`; scenes root: `{meta.get('scenes_root')}`; "
            f"torch threads: {meta.get('torch_threads')}; versions: "
            + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))


def write_report(doc: dict, out: Path) -> Path:
    """DIR/report.md with every suite's status, table and plot (plots in DIR/plots/)."""
    from .runner import SUITES
    report = Report(Path(out) / "report.md", TITLE)
    report.text(_meta_text(doc.get("meta", {})))
    total = sum(s.get("seconds", 0) for s in doc["status"].values())
    report.text(f"Suites run: {len(doc['status'])}, {total / 60:.1f} minutes in all.")
    for name in SUITES:
        if name in doc["status"]:
            add_suite(report, name, doc, Path(out) / "plots")
    return report.write()


def format_suite(name: str, doc: dict) -> str:
    """Markdown of one suite (status and table, no plot) for the terminal."""
    report = Report(Path("unused.md"), name)
    add_suite(report, name, doc, None)
    return "\n\n".join(report.blocks[1:]).replace(f"## {name}", f"== {name} ==", 1) + "\n"
