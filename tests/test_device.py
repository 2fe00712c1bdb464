"""srgan.device: one reading of torchrun's environment and one rule for `--device`, shared
by `Upscaler`, `srgan upscale` and the trainer."""

import pytest
import torch

from srgan import device as dev
from srgan.device import DeviceError, TorchrunEnv, pick_device, torchrun_env


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has `n` CUDA GPUs (torch.device needs none to name one)."""
    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(dev, "_mps_available", lambda: False)
    return have


def test_torchrun_env_reads_the_three_variables():
    assert torchrun_env({}) == TorchrunEnv(0, 0, 1) and not torchrun_env({}).enabled
    env = torchrun_env({"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert (env.rank, env.world_size, env.local_rank, env.enabled) == (5, 8, 1, True)
    assert not env.is_main and torchrun_env({"RANK": "0", "WORLD_SIZE": "8"}).is_main


def test_torchrun_env_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_env() == TorchrunEnv(rank=1, local_rank=1, world_size=2)


def test_auto_takes_this_ranks_gpu(gpus):
    gpus(2)
    assert pick_device("auto") == torch.device("cuda")
    assert pick_device("auto", local_rank=3) == torch.device("cuda", 1)
    assert pick_device("cuda", local_rank=1) == torch.device("cuda", 1)  # bare cuda: the rank's
    assert pick_device("cuda:0", local_rank=1) == torch.device("cuda", 0)  # named: kept


def test_auto_without_a_gpu_is_the_cpu(gpus):
    gpus(0)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("auto", local_rank=1) == torch.device("cpu")


def test_missing_devices_are_clear_errors_of_both_kinds(gpus):
    gpus(1)
    with pytest.raises(DeviceError, match="only 1 CUDA device"):
        pick_device("cuda:1")
    gpus(0)
    with pytest.raises(ValueError, match="--device cuda: .*use --device cpu"):
        pick_device("cuda")
    with pytest.raises(RuntimeError, match="run.device cuda: .*use run.device cpu"):
        pick_device("cuda", what="run.device")
    with pytest.raises(DeviceError, match="not a device name"):
        pick_device("gpu")
    with pytest.raises(DeviceError, match="MPS is not available"):
        pick_device("mps")


def test_every_caller_goes_through_it(gpus, monkeypatch):
    from srgan.commands.upscale import distributed_rank
    from srgan.train import distributed

    gpus(2)
    assert distributed.pick_device("auto", local_rank=1) == torch.device("cuda", 1)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    gpus_none = 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus_none > 0)
    assert distributed.pick_device("auto") == torch.device("cpu")  # training: never MPS
    assert pick_device("auto") == torch.device("mps")  # inference may
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed_rank() == (3, 4, 1)
