"""Runs that must stop or warn instead of wasting hours or mixing two runs in one folder:
divergence, a batch that cannot fit, a locked run folder, a very long ETA (issue 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from faults import Faults
from helpers import REPO, TINY, read_log, tiny_config

from srgan.commands.train import train
from srgan.train import guard
from srgan.train.checkpoint import list_checkpoints
from srgan.train.config import ConfigError, load_config
from srgan.train.guard import RunLock, check_batch_fits, step_bytes_per_sample
from srgan.train.loop import TrainingDiverged
from srgan.train.run import run_training

pytestmark = pytest.mark.usefixtures("one_thread")


def cli_args(train_dir, run_dir, *extra: str) -> list[str]:
    sets = [*TINY, f"data.train=[{train_dir}]", *extra]
    return ["srresnet_x4", *[a for s in sets for a in ("--set", s)], "--run-dir", str(run_dir)]


# ------------------------------------------------------------------------------ divergence


def test_lr_1e10_stops_with_an_error_not_done(image_dirs, tmp_path):
    """10 steps at lr 1e10: after the first step every loss is non-finite, fewer than
    train.max_bad_steps in a row, but the run is mostly skipped: an error, exit 1."""
    run_dir = tmp_path / "huge_lr"
    res = CliRunner().invoke(train, cli_args(image_dirs[0], run_dir, "train.steps=10",
                                             "train.lr=1e10"))
    assert res.exit_code == 1, res.output
    assert "diverged" in res.output and "non-finite" in res.output
    assert "done" not in res.output
    assert not (run_dir / "generator.safetensors").exists()
    events = [r.get("event") for r in read_log(run_dir)]
    assert "diverged" in events and "finished" not in events
    RunLock(run_dir).acquire().release()  # the failed run let go of its folder


def test_mostly_skipped_steps_are_divergence_even_without_a_streak(image_dirs, tmp_path):
    """Two bad steps in three, never 20 in a row: diverged once 100 steps show it."""
    bad = [s for s in range(1, 400) if s % 3]
    cfg = tiny_config(image_dirs, "train.steps=300", "log.ckpt_every=50")
    with pytest.raises(TrainingDiverged, match=r"of the last 100 steps.*step 100\)"):
        run_training(cfg, tmp_path / "alt", callbacks=[Faults(nan_steps=bad)])
    # one bad step in three is a bumpy but working run
    cfg = tiny_config(image_dirs, "train.steps=120", "log.ckpt_every=500")
    rare = [s for s in range(1, 400) if s % 3 == 0]
    assert run_training(cfg, tmp_path / "ok", callbacks=[Faults(nan_steps=rare)]).finished


# ------------------------------------------------------------------------------ memory


def test_absurd_batch_is_refused_before_any_image_is_read(tmp_path):
    """The memory check comes first: the missing training folder is not even looked at, and
    no run folder is created."""
    run_dir = tmp_path / "big"
    res = CliRunner().invoke(train, cli_args(tmp_path / "absent", run_dir,
                                             "train.batch_size=100000000"))
    assert res.exit_code == 1, res.output
    assert "train.batch_size=100000000 cannot fit" in res.output, res.output
    assert "available" in res.output and "does not exist" not in res.output
    assert not run_dir.exists()


def test_batch_check_suggests_the_batch_that_fits():
    cfg = load_config("srresnet_x4")  # 16 blocks, 64 channels, 96 px crops
    per = step_bytes_per_sample(cfg)
    assert 5e6 < per < 1e8  # MBs per sample: a lower bound, not a fantasy

    def memory(device):
        return 40 * per + 7

    check_batch_fits(cfg, "cpu", memory=memory)  # batch 16 fits
    cfg.train.batch_size = 41
    with pytest.raises(ConfigError, match=r"at most 40 could fit by this estimate, which is "
                                          r"a lower bound, so fewer really do"):
        check_batch_fits(cfg, "cpu", memory=memory)
    with pytest.raises(ConfigError, match=r"at most 20 could fit"):
        check_batch_fits(cfg, "cpu", processes=2, memory=memory)  # two CPU ranks share it
    check_batch_fits(cfg, "cpu", memory=lambda device: None)  # unknown memory: no refusal


# ------------------------------------------------------------------------------ run lock


def test_a_locked_run_folder_is_refused_and_left_alone(image_dirs, tmp_path):
    run_dir = tmp_path / "locked"
    holder = RunLock(run_dir).acquire()
    try:
        busy = rf"in use by another srgan train \(pid {os.getpid()}"
        with pytest.raises(ConfigError, match=busy):
            run_training(tiny_config(image_dirs, "train.steps=2"), run_dir)
        assert not (run_dir / "log.jsonl").exists() and not (run_dir / "config.toml").exists()
    finally:
        holder.release()
    assert run_training(tiny_config(image_dirs, "train.steps=2"), run_dir).finished
    RunLock(run_dir).acquire().release()  # released at the end of the run


def test_two_runs_at_once_do_not_share_a_folder_and_a_crash_frees_it(image_dirs, tmp_path):
    """A real `srgan train` holds the folder: a second one started meanwhile is refused, and
    SIGKILLing the first (a crash: no cleanup code runs) frees the folder for --resume."""
    run_dir = tmp_path / "shared"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen(
        [sys.executable, "-m", "srgan", "train",
         *cli_args(image_dirs[0], run_dir, "train.steps=100000", "log.ckpt_every=2")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 600  # only a hang
        while not list_checkpoints(run_dir / "checkpoints"):
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first run never wrote a checkpoint"
            time.sleep(0.2)
        second = CliRunner().invoke(train, cli_args(image_dirs[0], run_dir, "train.steps=4"))
        assert second.exit_code == 1 and f"pid {first.pid}" in second.output, second.output
        resumed = CliRunner().invoke(train, ["--resume", str(run_dir)])
        assert resumed.exit_code == 1 and "in use" in resumed.output, resumed.output
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    assert [r.get("event") for r in read_log(run_dir)].count("start") == 1
    newest = list_checkpoints(run_dir / "checkpoints")[-1]
    step = int(newest.stem.split("_")[1])
    cfg = load_config(run_dir / "config.toml", [f"train.steps={step + 2}", "log.progress=false"])
    assert run_training(cfg, run_dir, resume=True).finished


# ------------------------------------------------------------------------------ ETA


def test_a_run_of_many_hours_says_so_and_suggests_time_limit(image_dirs, tmp_path):
    messages: list[str] = []
    cfg = tiny_config(image_dirs, "train.steps=1000000000", "log.ckpt_every=100000")
    run_training(cfg, tmp_path / "long", callbacks=[Faults(signal_at=14)], log=messages.append)
    (warning,) = [m for m in messages if "remaining" in m]
    assert "--time-limit" in warning and "999,999,988 steps" in warning, warning
    assert "h" in warning or "days" in warning
    assert [r for r in read_log(tmp_path / "long") if r.get("event") == "eta"]

    messages.clear()
    run_training(tiny_config(image_dirs, "train.steps=20"), tmp_path / "short",
                 log=messages.append)
    assert not [m for m in messages if "remaining" in m]


def test_eta_warning_text():
    assert guard.eta_warning("r", 100, 1.0, None) is None  # 100 s: nothing to say
    text = guard.eta_warning("runs/x", 99_990, 5.7, None)
    assert "(158 h)" in text and "--time-limit" in text and "--resume runs/x" in text
    text = guard.eta_warning("runs/x", 99_990, 5.7, 3600.0)
    assert "after about 631 more steps" in text
    assert guard.eta_warning("runs/x", 99_990, 5.7, 600_000.0) is None  # planned to finish


# ------------------------------------------------------------------------------ progress


def test_progress_bar_shows_the_real_step_and_messages_stay_off_it(
        image_dirs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the notice shows
    cfg = tiny_config(image_dirs, "train.steps=50", "log.progress=true", "log.tensorboard=true",
                      "log.ckpt_every=100")
    result = run_training(cfg, tmp_path / "bar", callbacks=[Faults(signal_at=3)],
                          log=lambda s: print(s, file=sys.stderr))
    assert result.step == 4
    err = capsys.readouterr().err
    counts = [int(c) for c in __import__("re").findall(r"\| *(\d+)/50 ", err)]
    assert counts and counts[-1] == 4, err  # not 0: the bar is where the run is
    # each line ends with what was written last after a carriage return: a message line
    # must be the whole message, not the tail of a progress bar
    tails = [line.split("\r")[-1] for line in err.split("\n")]
    for start in ("training bar", "tensorboard is not installed", "stopped at step 4"):
        assert any(t.startswith(start) for t in tails), (start, err)


def test_a_measured_step_refuses_a_batch_the_lower_bound_let_through(image_dirs):
    """The up-front estimate is a lower bound; a step measured at two small batches says
    what a batch really takes, and a batch that would use most of the memory is refused."""
    import mmap

    from srgan.train.guard import check_measured_batch

    def step(batch: int) -> None:  # 40 MiB a sample, touched, then freed
        # fresh pages from the kernel: a malloc'd array may reuse pages the process already
        # holds (an earlier in-process `srgan upscale` keeps freed memory, srgan.heap)
        size = batch * (40 << 20)
        with mmap.mmap(-1, size) as pages:
            for offset in range(0, size, mmap.PAGESIZE):
                pages[offset] = 1

    cfg = tiny_config(image_dirs, "train.batch_size=30")
    free = 1 << 30
    assert step_bytes_per_sample(cfg) * 30 < free  # the lower bound lets it through
    with pytest.raises(ConfigError, match=r"train.batch_size=30 does not fit: memory: a step "
                                          r"takes about .* \+ 4\d\.\d MiB a sample") as info:
        check_measured_batch(cfg, torch_cpu(), step, memory=lambda d: free)
    fits = int(str(info.value).rsplit("train.batch_size=", 1)[1].split(" ")[0])
    assert 12 <= fits <= 20  # 80% of 1 GiB at about 40 MiB a sample
    ok = tiny_config(image_dirs, f"train.batch_size={fits}")
    assert "of 1.0 GiB available" in check_measured_batch(ok, torch_cpu(), step,
                                                          memory=lambda d: free)


def torch_cpu():
    import torch

    return torch.device("cpu")


def test_the_time_limit_stops_after_the_step_that_passed_it(image_dirs, tmp_path):
    """A step that runs past --time-limit ends the run at once, not one more step later."""
    from srgan.train.callbacks import TrainCallback

    class SlowFirstStep(TrainCallback):
        def on_batch(self, state, step, lr_img, hr):
            if step == 1:
                time.sleep(1.0)
            return lr_img, hr

    result = run_training(tiny_config(image_dirs, "train.steps=50"), tmp_path / "slow",
                          time_limit=0.5, callbacks=[SlowFirstStep()])
    assert result.stopped == "time limit" and result.step == 1
