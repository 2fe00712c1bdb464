"""Training end to end on tiny networks and tiny generated images (CPU, seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import SHARED, TINY, read_log, tiny_config

from srgan.train.callbacks import TrainCallback
from srgan.train.config import load_config
from srgan.train.run import run_training
from srgan.weights import load_generator, read_metadata

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ stage 1


def test_stage1_lowers_the_loss_and_fills_the_run_folder(image_dirs, tmp_path):
    cfg = tiny_config(image_dirs, "train.steps=100", "train.lr=2e-3", "log.every=20",
                      "log.val_every=50", "log.ckpt_every=20", "log.keep=2", "train.ema=0.9")
    run_dir = tmp_path / "run"
    result = run_training(cfg, run_dir)
    assert result.finished and result.step == 100 and result.exit_code == 0
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 5
    assert np.mean(losses[-2:]) < 0.75 * losses[0], losses

    # run folder layout
    assert (run_dir / "config.toml").is_file()
    assert load_config(run_dir / "config.toml").train.steps == 100
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*.pt"))
    assert ckpts == ["step_000000080.pt", "step_000000100.pt"]  # last K = 2 kept
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert sorted(p.name for p in (run_dir / "val").iterdir()) == [
        "step_000000050_im0.png", "step_000000100_im0.png"]
    records = read_log(run_dir)
    assert records[0]["event"] == "start" and records[-1]["event"] == "finished"
    val = [r for r in records if "val/psnr_y" in r]
    assert [r["step"] for r in val] == [50, 100]
    train = [r for r in records if "train/loss" in r]
    assert {"train/lr", "train/patches_per_s", "train/content_mse"} <= set(train[0])

    # the exported generator is a Core model file with a card saying how it was trained
    gen = load_generator(run_dir / "generator.safetensors").net
    assert (gen.scale, gen.num_blocks, gen.channels) == (4, 1, 8)
    _, card = read_metadata(run_dir / "generator.safetensors")
    assert card.name == "run" and "stage 1" in card.training
    assert f"from {image_dirs[0].name}/ with MATLAB-bicubic LR" in card.training
    assert str(image_dirs[0]) not in card.training and card.extra["weights"] == "ema"
    assert float(card.extra["val_psnr_y"]) == pytest.approx(result.best_psnr, abs=1e-3)
    lr = torch.rand(1, 3, 8, 8)
    assert gen(lr).shape == (1, 3, 32, 32)


def test_cli_runs_stage1_and_refuses_to_overwrite(image_dirs, tmp_path):
    from srgan.commands.train import train

    train_dir, _ = image_dirs
    args = ["srresnet_x4", *[a for t in TINY for a in ("--set", t)],
            "--set", f"data.train=[{train_dir}]", "--set", "train.steps=4",
            "--set", f"run.dir={tmp_path}", "--set", "run.name=cli"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "generator.safetensors").is_file()
    again = CliRunner().invoke(train, args)
    assert again.exit_code == 1 and "--resume" in again.output
    bad = CliRunner().invoke(train, ["srresnet_x4", "--set", "train.bach_size=2"])
    assert bad.exit_code == 1 and "did you mean train.batch_size" in bad.output
    missing = CliRunner().invoke(train, ["srresnet_x4", "--set", f"data.train=[{tmp_path}/no]",
                                         "--set", f"run.dir={tmp_path}"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def shared_train_folders() -> list[Path]:
    """The training folders under ../shared/data/train, found by listing (their names and
    number change). Skips only when ../shared itself is absent; a ../shared without training
    folders is a broken checkout and fails."""
    if not SHARED.is_dir():
        pytest.skip("../shared absent")
    root = SHARED / "data" / "train"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    assert folders, f"{root}: no training folders (../shared is present but incomplete)"
    return folders


def test_stage1_runs_on_a_real_folder(tmp_path):
    folders = shared_train_folders()
    val = SHARED / "data" / "benchmark" / "Set5"
    assert val.is_dir(), f"{val} missing from ../shared"
    cfg = load_config("srresnet_x4", [
        *TINY, f"data.train=[{','.join(str(f) for f in folders)}]", "data.max_images=8",
        "data.crop=96", "train.steps=3", f"data.val={val}", "data.val_max_images=1",
    ])
    result = run_training(cfg, tmp_path / "real")
    assert result.finished and result.best_psnr is not None and result.best_psnr > 5


def test_export_command(image_dirs, tmp_path):
    from srgan.commands.export import export

    cfg = tiny_config(image_dirs, "train.steps=4", "log.ckpt_every=2", "train.ema=0.5")
    run_training(cfg, tmp_path / "run")
    out = tmp_path / "g.safetensors"
    res = CliRunner().invoke(export, [str(tmp_path / "run"), "-o", str(out), "--ema"])
    assert res.exit_code == 0, res.output
    exported = load_generator(out).net
    final = load_generator(tmp_path / "run" / "generator.safetensors")  # EMA, best or last
    _, card = read_metadata(out)
    assert card.extra["weights"] == "ema" and card.extra["steps"] == "4"
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "step_000000004.pt", weights_only=True)
    for k, v in exported.state_dict().items():
        assert torch.equal(v, ckpt["ema"][k].contiguous())
    assert final is not None
    raw = tmp_path / "raw.safetensors"
    res = CliRunner().invoke(export, [str(tmp_path / "run" / "checkpoints" / "step_000000002.pt"),
                                      "-o", str(raw), "--fp16"])
    assert res.exit_code == 0, res.output
    assert read_metadata(raw)[1].extra["steps"] == "2"
    res = CliRunner().invoke(export, [str(tmp_path / "run"), "-o", str(tmp_path / "x.pth")])
    assert res.exit_code == 1 and ".safetensors" in res.output
    cfg = tiny_config(image_dirs, "train.steps=2")
    run_training(cfg, tmp_path / "noema")
    out = tmp_path / "noema.safetensors"  # a new name: export does not replace files
    res = CliRunner().invoke(export, [str(tmp_path / "noema"), "-o", str(out), "--ema"])
    assert res.exit_code == 1 and "train.ema = 0" in res.output


def test_callbacks_see_each_batch_each_step_and_the_end(image_dirs, tmp_path):
    calls: list[tuple] = []

    class Recorder(TrainCallback):
        def on_batch(self, state, step, lr_img, hr):
            calls.append(("batch", step, state.step))
            return lr_img, hr.clone()

        def on_step_end(self, state):
            calls.append(("end", state.step))

        def on_fit_end(self, state, result):
            calls.append(("fit", result.step, result.finished))

    result = run_training(tiny_config(image_dirs, "train.steps=2"), tmp_path / "cb",
                          callbacks=[Recorder()])
    assert result.finished
    assert calls == [("batch", 1, 0), ("end", 1), ("batch", 2, 1), ("end", 2), ("fit", 2, True)]


def test_tensorboard_scalars_and_image_grids(image_dirs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(image_dirs, "train.steps=4", "log.every=2", "log.val_every=4",
                      "log.tensorboard=true")
    run_training(cfg, tmp_path / "tb")
    acc = EventAccumulator(str(tmp_path / "tb" / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4]
    assert "val/psnr_y" in acc.Tags()["scalars"]
    (image,) = acc.Images("val/im0")
    assert image.step == 4 and (image.width, image.height) == (3 * 36, 32)  # LR | SR | HR


def test_without_tensorboard_one_line_and_no_folder(image_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    cfg = tiny_config(image_dirs, "train.steps=2", "log.tensorboard=true")
    run_training(cfg, tmp_path / "notb")
    lines = [x for x in capsys.readouterr().err.splitlines() if "tensorboard" in x.lower()]
    assert len(lines) == 1 and "not installed" in lines[0]
    assert not (tmp_path / "notb" / "tb").exists()
