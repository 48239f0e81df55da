"""Trainer, losses, checkpoints, export and the shipped weights."""

import csv
import json

import pytest
import torch

from recon_match.data import MixtureDataset
from recon_match.model import WEIGHTS_PATH, DenseMatcher, load_matcher
from recon_match.train import Trainer
from recon_match.train.checkpoint import load_checkpoint
from recon_match.train.export import export_weights
from recon_match.train.losses import compute_losses
from recon_match.train.metrics import ValidationMeter
from recon_match.train.trainer import native_bf16

TINY = {"data": {"size": [48, 64], "photo_root": None, "style_prob": 0.0}, "batch_size": 2,
        "val_size": 2, "val_every": 1000, "log_every": 1, "num_workers": 0, "warmup_steps": 2}



def _batch(n=2, size=(48, 64), seed=0):
    ds = MixtureDataset({"size": size, "photo_root": None, "seed": seed, "style_prob": 0.0})
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


@pytest.mark.parametrize("bf16", [False, True])
def test_losses_decrease_on_a_fixed_batch(bf16):
    torch.manual_seed(0)
    model = DenseMatcher()
    model.backbone_bf16 = bf16
    batch = _batch(size=(64, 96))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(15):
        losses = compute_losses(model(batch), batch)
        assert set(losses) >= {"coarse", "mid", "fine", "cert_mid", "cert_fine", "total"}
        assert losses["total"].shape == (2,)
        opt.zero_grad()
        losses["total"].mean().backward()
        opt.step()
        totals.append(float(losses["total"].detach().mean()))
    assert sum(totals[-3:]) / 3 < 0.8 * totals[0], totals


def test_bf16_backbone_gives_fp32_features_close_to_fp32(tmp_path):
    torch.manual_seed(0)
    model = DenseMatcher().eval()
    images = _batch(size=(64, 96))["image0"]
    with torch.no_grad():
        ref = model.extract(images)
        model.backbone_bf16 = True
        low = model.extract(images)
    for k in ("fine", "mid", "coarse"):
        assert low[k].dtype == torch.float32
        err = (low[k] - ref[k]).norm() / ref[k].norm()
        assert 0 < err < 0.03, (k, float(err))  # bfloat16 really ran, and stayed close
    # the trainer takes bf16 only where the hardware runs it natively (emulated: ~10x slower)
    trainer = Trainer(tmp_path / "run", {**TINY, "backbone_bf16": True})
    native = native_bf16(trainer.device)
    assert trainer.net.backbone_bf16 == native
    trainer.validate()  # in fp32 (comparable with fp32 runs), then back to the training setting
    assert trainer.net.backbone_bf16 == native and trainer.train(max_steps=2) == 2


def test_metrics_of_perfect_and_shifted_warps():
    batch = _batch(1)
    perfect = {"warp0": batch["warp0"], "warp1": batch["warp1"],
               "certainty0": torch.ones(1, 48, 64), "certainty1": torch.ones(1, 48, 64)}
    meter = ValidationMeter()
    meter.update(perfect, batch)
    s = meter.summary()["all"]
    assert s["epe"] == 0 and s["pck1"] == 1 and s["pairs"] == 1
    shifted = dict(perfect, warp0=batch["warp0"] + 2.0, warp1=batch["warp1"] + 2.0)  # 2.83 px off
    meter = ValidationMeter()
    meter.update(shifted, batch)
    s = meter.summary()
    assert s["all"]["pck1"] == 0 and s["all"]["pck3"] == 1 and abs(s["all"]["epe"] - 8 ** 0.5) < 1e-4
    assert f"gen/{batch['generator'][0]}" in s and "style/none" in s


def _losses(run_dir):
    with open(run_dir / "log.csv") as f:
        return {int(r["step"]): float(r["total"]) for r in csv.DictReader(f)}


def test_resume_continues_step_count_and_loss_curve(tmp_path):
    straight = Trainer(tmp_path / "a", TINY)
    assert straight.train(max_steps=4) == 4
    part = Trainer(tmp_path / "b", TINY)
    assert part.train(max_steps=2) == 2
    resumed = Trainer(tmp_path / "b", resume=True)
    assert resumed.state["step"] == 2
    assert resumed.train(max_steps=4) == 4
    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert sorted(b) == [1, 2, 3, 4]
    for step in (3, 4):
        assert abs(a[step] - b[step]) < 1e-4 * max(1.0, abs(a[step])), (step, a[step], b[step])
    assert json.loads((tmp_path / "b" / "config.json").read_text())["batch_size"] == 2
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(tmp_path / "b", TINY)
    with pytest.raises(ValueError, match="cannot change 'model'"):
        Trainer(tmp_path / "b", {"model": {"layers": 2}}, resume=True)
    # mixture options may change on resume
    assert Trainer(tmp_path / "b", {"data": {"style_prob": 0.5}}, resume=True).conf["data"]["style_prob"] == 0.5


def test_checkpoint_roundtrip_and_export(tmp_path):
    trainer = Trainer(tmp_path / "run", TINY)
    trainer.train(max_steps=1)
    ckpt = tmp_path / "run" / "checkpoint_last.pt"
    assert load_checkpoint(ckpt)["state"]["step"] == 1
    batch = _batch(1, seed=5)
    with torch.no_grad():
        expected = trainer.net.eval()(batch)
        loaded = load_matcher(ckpt, device="cpu")(batch)
    assert torch.equal(expected["warp0"], loaded["warp0"])
    export_weights(ckpt, tmp_path / "w.pt", half=False)
    with torch.no_grad():
        exported = load_matcher(tmp_path / "w.pt", device="cpu")(batch)
    assert torch.equal(expected["warp0"], exported["warp0"])


def test_weight_average_is_validated_resumed_and_exported(tmp_path):
    conf = {**TINY, "ema_decay": 0.5}
    trainer = Trainer(tmp_path / "run", conf)
    start = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    trainer.train(max_steps=1)
    one = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    name = "coarse_proj.weight" if "coarse_proj.weight" in one else next(
        k for k, v in one.items() if v.is_floating_point() and not torch.equal(v, start[k]))
    ema = trainer.ema.state_dict()[name]
    assert torch.allclose(ema, 0.5 * (start[name] + one[name]), atol=1e-6)  # one step of the average
    assert not torch.equal(ema, one[name])
    resumed = Trainer(tmp_path / "run", resume=True)  # the average survives a resume
    assert torch.equal(resumed.ema.state_dict()[name], ema)
    batch = _batch(1, seed=5)
    with torch.no_grad():
        expected = trainer.ema.eval()(batch)
        exported = load_matcher(tmp_path / "run" / "checkpoint_last.pt", device="cpu")(batch)
    assert torch.equal(expected["warp0"], exported["warp0"])  # checkpoints load their average
    assert export_weights(tmp_path / "run" / "checkpoint_last.pt", tmp_path / "w.pt", half=False)["ema"]
    plain = Trainer(tmp_path / "plain", TINY)  # a run without averaging can start one on resume
    plain.train(max_steps=1)
    late = Trainer(tmp_path / "plain", conf, resume=True)
    assert torch.equal(late.ema.state_dict()[name], late.net.state_dict()[name])


def test_bad_config_and_bad_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown train config key 'batchsize'"):
        Trainer(tmp_path / "x", {"batchsize": 3})
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(tmp_path / "nothing", resume=True)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(RuntimeError, match="corrupt.pt"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(RuntimeError, match="not a recon-match"):
        load_matcher(foreign)


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):  # unpickling would create a file: code execution
        return (open, (self.path, "w"))


def test_crafted_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "recon-match-checkpoint", "model": _Payload(str(marker))}, evil)
    with pytest.raises(RuntimeError, match="evil.pt"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_shipped_weights_beat_an_untrained_network(shared_data):
    if not WEIGHTS_PATH.is_file():
        pytest.skip(f"no shipped weights at {WEIGHTS_PATH}")
    ds = MixtureDataset({"size": [144, 192], "split": "val", "seed": 99, "style_prob": 0.0,
                         "photo_root": str(shared_data / "natural")})
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    scores = {}
    for name, model in (("shipped", load_matcher(device="cpu")), ("untrained", DenseMatcher().eval())):
        meter = ValidationMeter()
        with torch.no_grad():
            meter.update(model(batch), batch)
        scores[name] = meter.summary()["all"]["pck5"]
    assert scores["shipped"] > scores["untrained"] + 0.15 and scores["shipped"] > 3 * scores["untrained"], scores


def test_validate_scores_any_weights_on_the_runs_validation_set(tmp_path):
    from recon_match.train.validate import table, validate
    trainer = Trainer(tmp_path / "run", TINY)
    trainer.train(max_steps=2)
    expected = trainer.validate()
    export_weights(tmp_path / "run" / "checkpoint_last.pt", tmp_path / "w.pt", half=False)
    for path in (tmp_path / "run" / "checkpoint_last.pt", tmp_path / "w.pt"):
        got = validate(path, TINY)
        assert got["all"]["pck3"] == pytest.approx(expected["all"]["pck3"], abs=1e-6)
        assert got["all"]["epe"] == pytest.approx(expected["all"]["epe"], rel=1e-5)
    assert table(got).splitlines()[2].startswith("| all | 2 |")
    meta = export_weights(tmp_path / "run" / "checkpoint_last.pt", tmp_path / "w2.pt",
                          validation={"config": "tiny.json", "summary": got})
    assert meta["validation"] == got and meta["validation_config"] == "tiny.json"


def test_validation_set_ignores_the_training_grey_rate():
    """The fixed validation set must not change with the training recipe: a config with
    grey renderings keeps the colour validation set (stage 6 once leaked 0.2 into it)."""
    from recon_match.train.config import make_conf
    conf = make_conf({"data": {"gray_prob": 0.2}})
    assert conf["data"]["gray_prob"] == 0.2
    assert MixtureDataset({**conf["data"], **conf["val_data"]}).conf["gray_prob"] == 0.0
