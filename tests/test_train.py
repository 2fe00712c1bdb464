"""Training end to end on tiny networks and tiny generated images (CPU, seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from srgan.imageio import from_array, write_image
from srgan.train.config import load_config
from srgan.train.loop import DebugHooks
from srgan.train.run import run_training
from srgan.weights import load_generator, read_metadata

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REPO = Path(__file__).resolve().parents[1]

# 1 residual block, 8 channels, 16px HR crops (4px LR), batch 4: a step takes milliseconds.
TINY = [
    "model.num_blocks=1", "model.channels=8", "discriminator.base_channels=4",
    "data.crop=16", "train.batch_size=4", "log.progress=false", "log.tensorboard=false",
    "log.val_images=1",
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy 2-core machine OpenMP's spinning
    threads make each step ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour images (learnable from 4x4 LR crops), uint8 H x W x 3."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = []
    for c in range(3):
        fy, fx, phase = rng.uniform(0.05, 0.3, 3)
        planes.append(0.5 + 0.4 * np.sin(fy * yy + phase * 7 + c) * np.cos(fx * xx))
    return (np.clip(np.stack(planes, axis=2), 0, 1) * 255).round().astype(np.uint8)


def make_images(folder: Path, count: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_image(from_array(smooth(*size, seed=seed + i)), folder / f"im{i}.png")
    return folder


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return make_images(root / "train", 4), make_images(root / "val", 2, (32, 36), seed=100)


def tiny_config(image_dirs, *extra: str, config: str = "srresnet_x4"):
    train, val = image_dirs
    return load_config(config, [*TINY, f"data.train=[{train}]", f"data.val={val}", *extra])


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    """`python -m srgan ARGS` in a subprocess with one thread (bit-exact comparisons)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"),
                **(env or {})}
    return subprocess.run([sys.executable, "-m", "srgan", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=120)


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


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
    gen = load_generator(run_dir / "generator.safetensors")
    assert (gen.scale, gen.num_blocks, gen.channels) == (4, 1, 8)
    _, card = read_metadata(run_dir / "generator.safetensors")
    assert card.name == "run" and "stage 1" in card.training
    assert str(image_dirs[0]) in card.training and card.extra["weights"] == "ema"
    assert float(card.extra["val_psnr_y"]) == pytest.approx(result.best_psnr, abs=1e-3)
    lr = torch.rand(1, 3, 8, 8)
    assert gen(lr).shape == (1, 3, 32, 32)


def test_cli_runs_stage1_and_refuses_to_overwrite(image_dirs, tmp_path):
    from srgan.train.command import train

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
    exported = load_generator(out)
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


def test_hooks_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SRGAN_TEST_HOOKS", json.dumps({"kill_at": 3, "nan_steps": [1]}))
    hooks = DebugHooks.from_env()
    assert hooks.kill_at == 3 and hooks.nan_steps == [1]


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
