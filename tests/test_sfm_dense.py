"""End to end: `recon-match sfm` with the shipped dense matcher on the object sample scene."""

import pytest

from pipelines import cli
from recon_match.sfm import read_stats


@pytest.mark.slow  # 190 pairs of dense matching + mapping: minutes on 2 cores
def test_dense_sfm_registers_every_object_view_accurately(tmp_path):
    from recon_match.render import ensure_sample_scene
    scene = ensure_sample_scene("object")
    out = tmp_path / "dense"
    assert cli.main(["sfm", str(scene / "images"), "--out", str(out), "--gt", str(scene / "gt"),
                     "--pairs", "exhaustive", "--no-viz"]) == 0
    stats = read_stats(out / "stats.json")
    assert stats["registered"] == stats["images"] == 20
    assert stats["gt"]["median_rotation_error_deg"] < 1.0
