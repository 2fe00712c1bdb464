"""Robustness: bit-exact resume after SIGKILL, damaged checkpoints, NaN steps, SIGTERM."""

from __future__ import annotations

import signal

import pytest
import torch
from faults import Faults
from helpers import TINY, make_images, read_log, run_cli, tiny_config

from srgan.train.checkpoint import list_checkpoints, load_checkpoint
from srgan.train.config import load_config
from srgan.train.loop import TrainingDiverged
from srgan.train.run import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

# Stage 2 with everything that carries state: D, EMA, warmup + cosine, clipping, FM term.
FULL = ["train.steps=12", "log.ckpt_every=4", "log.keep=5", "train.ema=0.9",
        "train.schedule=cosine", "train.warmup_steps=3", "train.grad_clip=1.0",
        "loss.feature_matching=0.1", "log.every=4", "log.val_every=6", "train.lr=1e-3"]


def assert_same_state(a: dict, b: dict, path: str = "") -> None:
    """Every tensor and number of two checkpoints equal, bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k in ("train_seconds", "config"):
                continue
            assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_exact(image_dirs, tmp_path):
    train, val = image_dirs
    sets = [f"data.train=[{train}]", f"data.val={val}"]
    cfg = tiny_config(image_dirs, *FULL, config="srgan_mse_x4")
    run_training(cfg, tmp_path / "whole")  # uninterrupted, in this process (1 thread)

    args = ["train", "srgan_mse_x4", *[a for s in [*TINY, *sets, *FULL] for a in ("--set", s)],
            "--run-dir", str(tmp_path / "cut")]
    killed = run_cli(*args, faults={"kill_at": 7})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "checkpoints")] == [
        "step_000000004.pt"]
    # resume in this process (the same code path as `srgan train --resume`)
    messages: list[str] = []
    resumed = run_training(load_config(tmp_path / "cut" / "config.toml"), tmp_path / "cut",
                           resume=True, log=messages.append)
    assert resumed.finished and any("step_000000004.pt" in m for m in messages)

    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "step_000000012.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoints" / "step_000000012.pt")
    assert_same_state(whole, cut)
    events = [r.get("event") for r in read_log(tmp_path / "cut")]
    assert events.count("start") == 1 and events.count("resume") == 1


def test_truncated_checkpoint_falls_back_to_the_previous_one(image_dirs, tmp_path):
    cfg = tiny_config(image_dirs, "train.steps=8", "log.ckpt_every=4", "log.keep=3")
    run_dir = tmp_path / "run"
    run_training(cfg, run_dir)
    newest = run_dir / "checkpoints" / "step_000000008.pt"
    reference = load_checkpoint(newest)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut in half

    messages: list[str] = []
    result = run_training(tiny_config(image_dirs, "train.steps=8", "log.ckpt_every=4"),
                          run_dir, resume=True, log=messages.append)
    assert result.finished
    assert any("step_000000008.pt" in m and "unreadable" in m for m in messages), messages
    assert_same_state(reference, load_checkpoint(newest))  # redone from step 4, identically


def test_nonfinite_steps_are_skipped_then_stop_the_run(image_dirs, tmp_path):
    cfg = tiny_config(image_dirs, "train.steps=6", "log.every=2")
    messages: list[str] = []
    result = run_training(cfg, tmp_path / "one", callbacks=[Faults(nan_steps=[3, 5])],
                          log=messages.append)
    assert result.finished
    # said once on the console (not only in log.jsonl), and counted at the end
    assert len([m for m in messages if "non-finite" in m and "skipped" in m]) == 2, messages
    assert any(m.startswith("warning: step 3: non-finite") for m in messages)
    assert "(2 of 6 steps skipped as non-finite)" in messages[-1]
    result = run_training(tiny_config(image_dirs, "train.steps=6", "log.every=2"),
                          tmp_path / "two", callbacks=[Faults(nan_steps=[3])])
    events = [r for r in read_log(tmp_path / "two") if r.get("event") == "nonfinite"]
    assert [(e["step"], e["run"], e["total"]) for e in events] == [(3, 1, 1)]
    skipped = [r["train/skipped"] for r in read_log(tmp_path / "two") if "train/skipped" in r]
    assert skipped == [0, 1, 0]
    state = load_checkpoint(tmp_path / "two" / "checkpoints" / "step_000000006.pt")
    for name, t in state["generator"].items():  # BatchNorm statistics of the NaN pass undone
        assert torch.isfinite(t.float()).all(), name

    cfg = tiny_config(image_dirs, "train.steps=20", "log.ckpt_every=2", "train.max_bad_steps=3")
    with pytest.raises(TrainingDiverged, match=r"3 non-finite losses in a row.*step_000000006"):
        run_training(cfg, tmp_path / "many", callbacks=[Faults(nan_steps=[5, 6, 7, 8])])
    ckpts = list_checkpoints(tmp_path / "many" / "checkpoints")
    assert [p.name for p in ckpts][-1] == "step_000000006.pt"
    for path in ckpts:
        state = load_checkpoint(path)
        for part in ("generator", "opt_g"):
            tensors = state[part] if part == "generator" else {
                f"{i}.{k}": v for i, s in state[part]["state"].items() for k, v in s.items()}
            for name, t in tensors.items():
                assert torch.isfinite(t.float()).all(), f"{path.name} {part} {name}"
    four, six = (load_checkpoint(p) for p in ckpts[-2:])
    assert_same_state(four["generator"], six["generator"])  # steps 5 and 6 changed nothing


def test_sigterm_saves_a_checkpoint_and_time_limit_stops(image_dirs, tmp_path):
    cfg = tiny_config(image_dirs, "train.steps=50", "log.ckpt_every=100")
    handler_before = signal.getsignal(signal.SIGTERM)
    result = run_training(cfg, tmp_path / "term", callbacks=[Faults(signal_at=3)])
    assert result.stopped == "SIGTERM" and result.exit_code == 128 + signal.SIGTERM
    assert result.step == 4 and not result.finished
    assert [p.name for p in list_checkpoints(tmp_path / "term" / "checkpoints")] == [
        "step_000000004.pt"]
    assert not (tmp_path / "term" / "generator.safetensors").exists()
    stopped = [r for r in read_log(tmp_path / "term") if r.get("event") == "stopped"]
    assert stopped and stopped[0]["reason"] == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is handler_before  # our handler is gone again

    limited = run_training(tiny_config(image_dirs, "train.steps=50"), tmp_path / "term",
                           resume=True, time_limit=0.0)
    assert limited.stopped == "time limit" and limited.exit_code == 0 and limited.step == 5


def test_time_limited_stop_exports_weights_and_export_best_says_why(image_dirs, tmp_path):
    """A --time-limit stop is a planned end: the weights so far are exported (a signal only
    checkpoints), and `srgan export --best` without a best.pt says why, truthfully."""
    from click.testing import CliRunner

    from srgan.commands.export import export
    from srgan.weights import read_metadata

    run_dir = tmp_path / "limited"
    limited = run_training(tiny_config(image_dirs, "train.steps=50"), run_dir, time_limit=0.0)
    assert limited.stopped == "time limit" and limited.exit_code == 0 and limited.step == 1
    assert limited.generator == run_dir / "generator.safetensors"
    assert read_metadata(limited.generator)[1].extra["steps"] == "1"
    assert [r for r in read_log(run_dir) if r.get("event") == "exported"]
    res = CliRunner().invoke(export, [str(run_dir), "--best", "-o",
                                      str(tmp_path / "b.safetensors")])
    assert res.exit_code == 1, res.output
    assert "not validated yet" in res.output and "newest checkpoint is step 1" in res.output
    assert "no validation set" not in res.output

    train, _ = image_dirs
    cfg = load_config("srresnet_x4", [*TINY, f"data.train=[{train}]", "train.steps=50"])
    run_training(cfg, tmp_path / "noval", time_limit=0.0)
    assert (tmp_path / "noval" / "generator.safetensors").is_file()
    res = CliRunner().invoke(export, [str(tmp_path / "noval"), "--best", "-o",
                                      str(tmp_path / "c.safetensors")])
    assert res.exit_code == 1 and "data.val is empty" in res.output, res.output

    # validated before the stop: the exported weights carry the validation score
    run_training(tiny_config(image_dirs, "train.steps=50", "log.val_every=1"),
                 tmp_path / "val", time_limit=0.0)
    card = read_metadata(tmp_path / "val" / "generator.safetensors")[1]
    assert float(card.extra["val_psnr_y"]) > 5
    res = CliRunner().invoke(export, [str(tmp_path / "val"), "--best", "-o",
                                      str(tmp_path / "d.safetensors")])
    assert res.exit_code == 0, res.output


def test_resume_works_from_another_directory(tmp_path, monkeypatch):
    """Relative data paths are stored absolute when a run starts."""
    from click.testing import CliRunner

    from srgan.commands.train import train

    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    make_images(start / "imgs", 3)
    make_images(start / "val", 1, (32, 36), seed=9)
    elsewhere.mkdir()
    monkeypatch.chdir(start)
    args = ["srresnet_x4", *[a for s in [*TINY, "data.train=[imgs]", "data.val=val",
                                         "train.steps=2"] for a in ("--set", s)],
            "--run-dir", str(tmp_path / "run")]
    first = CliRunner().invoke(train, args)
    assert first.exit_code == 0, first.output
    stored = load_config(tmp_path / "run" / "config.toml")
    assert stored.data.train == [str(start / "imgs")] and stored.data.val == str(start / "val")
    # the same command from the same place: resumes without "differs" noise
    again = CliRunner().invoke(train, [*args, "--auto-resume"])
    assert again.exit_code == 0 and "differs" not in again.output, again.output

    monkeypatch.chdir(elsewhere)
    resumed = CliRunner().invoke(train, ["--resume", str(tmp_path / "run"),
                                         "--set", "train.steps=4"])
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "step_000000004.pt")["step"] == 4


def test_val_set_by_name_as_the_readme_writes_it(image_dirs, tmp_path, monkeypatch):
    """`--set data.val=Set5` finds the standard set like srgan benchmark does; a name found
    nowhere is a DataError listing where it looked."""
    from srgan.data import DataError

    root = tmp_path / "sets"
    make_images(root / "MySet", 1, (32, 36), seed=3)
    monkeypatch.setenv("SRGAN_DATA_ROOT", str(root))
    train, _ = image_dirs
    cfg = load_config("srresnet_x4", [*TINY, f"data.train=[{train}]", "data.val=MySet",
                                      "train.steps=2"])
    result = run_training(cfg, tmp_path / "named")
    assert result.best_psnr is not None
    assert load_config(tmp_path / "named" / "config.toml").data.val == str(root / "MySet")
    cfg = load_config("srresnet_x4", [*TINY, f"data.train=[{train}]", "data.val=NoSet"])
    with pytest.raises(DataError, match=r"NoSet.*not found.*looked in"):
        run_training(cfg, tmp_path / "unnamed")
    monkeypatch.chdir(tmp_path)  # a user's clone: no ../shared/data/benchmark/Set5
    cfg = load_config("srresnet_x4", [*TINY, f"data.train=[{train}]", "data.val=Set5"])
    with pytest.raises(DataError, match=r"Set5.*not found.*Bevilacqua.*--data-root DIR"):
        run_training(cfg, tmp_path / "set5")
