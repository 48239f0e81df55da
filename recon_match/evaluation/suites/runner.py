"""Running suites: order, dependencies, resume, and results.json saved after every suite.

results.json = {"version", "meta": {run settings and versions}, "status": {suite: {"status":
done|skipped|failed, "reason", "seconds", "finished"}}, "results": {suite: {dataset: {method:
{metric: value}}}}}. A skipped or failed suite has empty results and says why in `status`.
Each write is atomic, so an interrupted evaluation keeps every suite that finished.
"""

import importlib
import json
import logging
import time
from pathlib import Path

from ...fileio import atomic_path
from .base import SuiteSkipped, clean
from .tables import format_suite, write_report

logger = logging.getLogger(__name__)

SUITES = ("synthetic", "homography", "pairs", "zeroshot", "speed", "scenes", "localization")
VERSION = 1


def load_suite(name: str):
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join(SUITES)} or all")
    return importlib.import_module(f"{__package__}.{name}")


def plan(names, done) -> list[str]:
    """Suites to run in SUITES order: `names` plus the suites they need that are not `done`."""
    wanted = set(SUITES if "all" in names else names)
    for name in list(wanted):
        wanted.update(r for r in getattr(load_suite(name), "REQUIRES", ()) if r not in done)
    return [s for s in SUITES if s in wanted]


def weights_id(weights) -> dict:
    """What identifies the weights a result came from (path, size, modification time)."""
    from ...model import WEIGHTS_PATH
    path = Path(weights) if weights else WEIGHTS_PATH
    if not path.is_file():
        return {"path": str(path), "exists": False}
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime": int(st.st_mtime)}


def make_meta(ctx) -> dict:
    import cv2
    import kornia
    import pycolmap
    import torch
    return {"quick": ctx.quick, "weights": weights_id(ctx.weights),
            "data_root": str(ctx.data_root) if ctx.data_root else None,
            "scenes_root": str(ctx.scenes_root) if ctx.scenes_root else None,
            "torch_threads": torch.get_num_threads(),
            "versions": {"torch": torch.__version__, "pycolmap": pycolmap.__version__,
                         "opencv": cv2.__version__, "kornia": kornia.__version__}}


def load_results(ctx, meta) -> dict:
    """The results document to update: the existing results.json when it was made with the
    same mode and weights (so suites run separately accumulate), else a fresh one."""
    path = ctx.out / "results.json"
    fresh = {"version": VERSION, "meta": meta, "status": {}, "results": {}}
    if not path.is_file():
        return fresh
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); move it away or use another --out") from e
    old = doc.get("meta", {})
    same = doc.get("version") == VERSION and all(old.get(k) == meta[k] for k in ("quick", "weights"))
    if same:
        doc["meta"] = meta
        return doc
    if ctx.resume:
        raise ValueError(f"{path} was made with other settings (quick={old.get('quick')}, "
                         f"weights={old.get('weights')}); cannot resume it: use another --out")
    logger.warning("%s was made with other settings (quick mode or weights); starting afresh", path)
    return fresh


def save(ctx, doc) -> None:
    with atomic_path(ctx.out / "results.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    write_report(doc, ctx.out)


def run_one(ctx, name, conf) -> tuple[dict, dict]:
    t0 = time.time()
    try:
        results, status = load_suite(name).run(ctx, conf), {"status": "done", "reason": None}
    except SuiteSkipped as e:
        logger.warning("suite %s skipped: %s", name, e)
        results, status = {}, {"status": "skipped", "reason": str(e)}
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # one broken suite must not cost the others' results
        logger.exception("suite %s failed", name)
        results, status = {}, {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    status.update(seconds=round(time.time() - t0, 1), finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    return clean(results), status


def run_suites(ctx, names=("all",), confs=None, echo=print) -> dict:
    """Run the suites `names` ("all" = every suite) and return the results document.

    confs: optional {suite: options} passed to each suite's `run`. `ctx.resume`: suites
    already done in ctx.out/results.json are kept as they are. Tables go to `echo`.
    """
    confs = confs or {}
    ctx.out.mkdir(parents=True, exist_ok=True)
    doc = load_results(ctx, make_meta(ctx))
    done = {s for s, st in doc["status"].items() if st.get("status") == "done"}
    ctx.results.update({s: doc["results"].get(s, {}) for s in done})
    for name in plan(names, done if ctx.resume else set()):
        if ctx.resume and name in done:
            logger.info("suite %s already done in %s; kept (--resume)", name, ctx.out)
            continue
        logger.info("suite %s ...", name)
        results, status = run_one(ctx, name, confs.get(name))
        doc["results"][name], doc["status"][name] = results, status
        ctx.results[name] = results
        save(ctx, doc)
        echo(format_suite(name, doc))
    save(ctx, doc)
    return doc
