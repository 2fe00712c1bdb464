"""srgan train on numbers and folders that cannot work: architecture bounds checked before the
network is built, checkpoints of other networks skipped in one line, a run folder whose parts
are files, run names that leave run.dir, absurd step counts."""

from __future__ import annotations

import shutil
import typing

import pytest
import torch
from helpers import TINY, cli, tiny_config

from srgan.nets import Discriminator, SRResNet
from srgan.train.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from srgan.train.config import Config, ConfigError, load_config
from srgan.train.run import run_training

pytestmark = pytest.mark.usefixtures("one_thread")


def train_args(image_dirs, run_dir, *sets: str) -> list[str]:
    train, val = image_dirs
    every = [*TINY, f"data.train=[{train}]", f"data.val={val}", *sets]
    return ["train", "srresnet_x4", "--run-dir", str(run_dir),
            *[a for s in every for a in ("--set", s)]]


# ------------------------------------------------------------------------- numbers


def numeric_keys() -> list[tuple[str, object]]:
    """Every key of a config (Config.flat) whose section's type hint is a number or a list."""
    cfg, keys = Config(), []
    for key in cfg.flat():
        section, name = key.split(".")
        hint = typing.get_type_hints(type(getattr(cfg, section)))[name]
        if hint in (int, float, list[float], list[int]):
            keys.append((key, hint))
    return keys


@pytest.mark.parametrize("key, hint", numeric_keys())
def test_every_numeric_config_key_refuses_nan_inf_and_huge_counts(key, hint):
    """nan passes every range check and no key means anything by inf: both are config
    errors, as is an integer no 64-bit counter holds (train.steps=1e23 was accepted)."""
    counts = hint in (int, list[int])
    for value in ("nan", "inf", "-inf", *(("1e30", "-1e30") if counts else ())):
        text = f"[{value}, {value}]" if hint in (list[float], list[int]) else value
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config("srresnet_x4", [f"{key}={text}"])


# ------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("override, message", [
    ("model.channels=100000", "model.channels: 1 to 1024 (got 100000)"),
    ("model.num_blocks=5000", "model.num_blocks: 0 to 256 (got 5000)"),
    ("discriminator.base_channels=4096", "discriminator.base_channels: 1 to 1024"),
    ("train.steps=1e12", "train.steps: 1 to 1,000,000,000"),
    ("run.name=../elsewhere", "run.name: one folder name"),
    ("run.name=/tmp/elsewhere", "run.name: one folder name"),
    ("run.name=..", "run.name: one folder name"),
])
def test_numbers_and_names_that_cannot_work_are_config_errors(override, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        load_config("srresnet_x4", [override])


def test_the_cli_names_the_architecture_before_building_it(image_dirs, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the network was built")

    monkeypatch.setattr(SRResNet, "__init__", never)
    res = cli(*train_args(image_dirs, tmp_path / "r", "model.channels=100000",
                          "train.batch_size=1"))
    assert res.exit_code == 1
    assert res.output.strip() == "Error: model.channels: 1 to 1024 (got 100000)"
    assert not (tmp_path / "r").exists()


def test_network_memory_is_counted_without_allocating_and_refused_by_name():
    from srgan.train.guard import check_network_fits, network_bytes

    cfg = load_config("srgan_x4", ["model.num_blocks=3", "model.channels=16",
                                   "discriminator.base_channels=8", "train.ema=0.9"])
    params, need = network_bytes(cfg)
    g = sum(p.numel() for p in SRResNet(4, 3, 16).parameters())
    d = sum(p.numel() for p in Discriminator(base_channels=8).parameters())
    assert params == g + d
    assert need == 4 * (5 * g + 4 * d)  # weights, gradients, Adam's two moments; EMA of G

    big = load_config("srresnet_x4", ["model.num_blocks=256", "model.channels=1024"])
    with pytest.raises(ConfigError) as err:  # 4.9G parameters: counted, never allocated
        check_network_fits(big, torch.device("cpu"), memory=lambda d: 16 * 2**30)
    text = str(err.value)
    assert text.startswith("the networks alone cannot fit: model.num_blocks=256, "
                           "model.channels=1024 make 4,919M parameters")
    assert "16.0 GiB available" in text and "\n" not in text
    check_network_fits(cfg, torch.device("cpu"), memory=lambda d: 2**30)  # fits: no error


# ------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def two_runs(image_dirs, tmp_path_factory):
    """A tiny run (8 channels) with checkpoints at steps 2 and 4, and one of 4 channels."""
    base = tmp_path_factory.mktemp("runs")
    for name, channels in (("c8", 8), ("c4", 4)):
        cfg = tiny_config(image_dirs, "train.steps=4", "log.ckpt_every=2", "log.keep=3",
                          "log.val_every=100", f"model.channels={channels}")
        run_training(cfg, base / name)
    return base


def fresh_copy(two_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_runs / "c8", run)
    return run


def test_a_copied_checkpoint_of_another_network_is_skipped_in_one_line(two_runs, tmp_path):
    run = fresh_copy(two_runs, tmp_path)
    other = list_checkpoints(two_runs / "c4" / "checkpoints")[-1]
    shutil.copy(other, run / "checkpoints" / "step_000000006.pt")  # the newest now
    res = cli("train", "--resume", str(run), "--set", "train.steps=6")
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if "step_000000006.pt" in line]
    assert warning == [
        f"warning: {run / 'checkpoints' / 'step_000000006.pt'}: checkpoint does not match "
        "the run's config: model.channels is 4 in the checkpoint, 8 in the config; trying "
        "the previous checkpoint"], res.output
    assert "(from step_000000004.pt)" in res.output and "size mismatch" not in res.output


def test_a_checkpoint_whose_tensors_differ_is_named_by_tensor(two_runs, tmp_path):
    """A checkpoint whose stored config agrees but whose weights do not: the tensor decides."""
    run = fresh_copy(two_runs, tmp_path)
    state = load_checkpoint(list_checkpoints(two_runs / "c4" / "checkpoints")[-1])
    state["config"] = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["config"]
    torch.save(state, run / "checkpoints" / "step_000000006.pt")
    res = cli("train", "--resume", str(run), "--set", "train.steps=6")
    assert res.exit_code == 0, res.output
    assert ("checkpoint does not match the run's config: generator tensor head.0.weight is "
            "4x3x9x9 in the checkpoint, 8x3x9x9 for the config") in res.output
    assert "size mismatch" not in res.output


def test_an_edited_config_fails_in_one_line_naming_the_key(two_runs, tmp_path):
    run = fresh_copy(two_runs, tmp_path)
    toml = run / "config.toml"
    toml.write_text(toml.read_text().replace("channels = 8", "channels = 16"))
    res = cli("train", "--resume", str(run))
    assert res.exit_code == 1
    last = res.output.strip().splitlines()[-1]
    assert last == (f"Error: no usable checkpoint in {run / 'checkpoints'}: step_000000004.pt, "
                    "step_000000002.pt: checkpoint does not match the run's config: "
                    "model.channels is 8 in the checkpoint, 16 in the config")
    assert "size mismatch" not in res.output
    with pytest.raises(CheckpointError, match="model.channels is 8 in the checkpoint"):
        run_training(load_config(toml), run, resume=True)


# ------------------------------------------------------------------------- run folder


@pytest.mark.parametrize("part", ["checkpoints", "val", "."])
def test_a_run_folder_part_that_is_a_file_is_named(image_dirs, tmp_path, part):
    run = tmp_path / "d5r"
    if part == ".":
        run.write_text("not a folder")
        path = run
    else:
        run.mkdir()
        path = run / part
        path.write_text("not a folder")
    args = train_args(image_dirs, run, "train.steps=2")
    if part == ".":  # (--run-dir itself refuses a file as a usage error)
        args[2:4] = ["--set", f"run.dir={tmp_path}", "--set", "run.name=d5r"]
    res = cli(*args)
    assert res.exit_code == 1, res.output
    assert res.output.strip() == (f"Error: {path} is not a folder ("
                                  + {"checkpoints": "the checkpoints", "val":
                                     "the validation images", ".": "the run"}[part]
                                  + " go there): move that file aside, or give this run "
                                    "another --run-dir")
    assert path.read_text() == "not a folder"


def test_resume_of_a_folder_whose_checkpoints_is_a_file(two_runs, tmp_path):
    run = fresh_copy(two_runs, tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("")
    res = cli("train", "--resume", str(run))
    assert res.exit_code == 1
    assert f"{run / 'checkpoints'} is not a folder" in res.output and "Errno" not in res.output
