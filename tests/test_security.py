"""Crafted files must not run code or reach outside the folders we were given."""

import ast
import logging
from pathlib import Path

import pycolmap
import pytest
import torch

from pipelines import cli
from recon_match.fileio import safe_name
from recon_match.localization.refmap import ReferenceMap
from recon_match.model import load_matcher
from recon_match.model.loading import read_torch_file
from recon_match.pairs import read_pairs
from recon_match.sfm.colmap import create_database
from recon_match.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling calls open(path, "w"): running it would create the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("where", ["top", "weights", "checkpoint"])
def test_crafted_pickle_runs_no_code(tmp_path, where, caplog):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    obj = {"top": Payload(marker),
           "weights": {"format": "recon-match-weights", "model_conf": {},
                       "state_dict": {"w": Payload(marker)}},
           "checkpoint": {"format": "recon-match-checkpoint", "model": Payload(marker)}}[where]
    torch.save(obj, evil)
    for load in (read_torch_file, load_matcher, load_checkpoint):
        with pytest.raises(RuntimeError, match="evil.pt"):
            load(evil)
    # and through the CLI, where a user passes --weights
    (tmp_path / "im").mkdir()
    with caplog.at_level(logging.ERROR):
        assert cli.main(["pairs", str(tmp_path / "im"), "--out", str(tmp_path / "p.txt"),
                         "--weights", str(evil)]) == 2
    assert "evil.pt" in caplog.text
    assert not marker.exists()


def test_every_torch_load_is_weights_only():
    """No code path may call torch.load without weights_only=True."""
    calls = []
    for path in [*ROOT.glob("recon_match/**/*.py"), *ROOT.glob("pipelines/*.py"),
                 *ROOT.glob("hloc_plugins/**/*.py"), *ROOT.glob("bench/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" and \
                    getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", ok))
    assert calls, "expected at least the loader's torch.load"
    assert all(ok for _, ok in calls), [c for c, ok in calls if not ok]


BAD_NAMES = ["../x.png", "a/../../x.png", "/etc/passwd", "..", "~/x.png", "..\\x.png",
             "a\\..\\..\\x.png", ""]
GOOD_NAMES = ["x.png", "a/b/x.png", "café 1.png", "..x.png", "a/.hidden.png"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_safe_name_rejects_escaping_names(name):
    with pytest.raises(ValueError, match="unsafe"):
        safe_name(name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_safe_name_keeps_ordinary_names(name):
    assert safe_name(name) == name


@pytest.mark.parametrize("name", ["../secret.png", "/etc/passwd"])
def test_names_from_files_cannot_escape(tmp_path, name):
    # pairs files
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"a.png b.png\na.png {name}\n")
    with pytest.raises(ValueError, match=r"pairs.txt:2: unsafe image name"):
        read_pairs(pairs)
    # names given to the database set-up (e.g. from a model or an h5 file)
    with pytest.raises(ValueError, match="unsafe image name"):
        create_database(tmp_path / "db.db", tmp_path, [name])
    assert not (tmp_path / "db.db").exists()
    # image names inside a reference model used for localization
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(pycolmap.Camera(model="PINHOLE", width=64, height=48,
                                                    params=[50, 50, 32, 24], camera_id=1))
    rec.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=1, image_id=1),
                                     pycolmap.Rigid3d())
    with pytest.raises(ValueError, match="unsafe image name"):
        ReferenceMap(rec, "crafted model")
