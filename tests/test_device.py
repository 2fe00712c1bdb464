"""srgan.device: one reading of torchrun's environment and one rule for `--device`, shared
by `Upscaler`, `srgan upscale` and the trainer."""

import pytest
import torch

from srgan.device import DeviceError, TorchrunEnv, pick_device, torchrun_env


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has `n` CUDA GPUs (torch.device needs none to name one)."""
    def have(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
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
    assert pick_device("cpu:0") == torch.device("cpu", 0)


# what None: pick_device's default, --device
@pytest.mark.parametrize("gpus_here, requested, what, error, message", [
    (1, "cuda:1", None, DeviceError, "only 1 CUDA device"),
    # both kinds: a ValueError for Upscaler's callers, a RuntimeError for the trainer's
    (0, "cuda", None, ValueError, "--device cuda: .*use --device cpu"),
    (0, "cuda", "run.device", RuntimeError, "run.device cuda: .*use run.device cpu"),
    (0, "gpu", None, DeviceError, "not a device name"),
    (0, "mps", None, DeviceError, "MPS is not available"),
    # `meta` only tracks shapes and a backend this PyTorch lacks cannot take a tensor: both
    # used to reach the first copy and end in a traceback
    (0, "meta", None, DeviceError, "--device meta: the meta device holds no data"),
    (0, "meta", "run.device", DeviceError, "run.device meta:.*use run.device cpu"),
    (0, "xla", None, DeviceError, "--device xla: this PyTorch cannot use it"),
])
def test_devices_that_cannot_be_used_are_clear_errors(gpus, gpus_here, requested, what,
                                                      error, message):
    gpus(gpus_here)
    with pytest.raises(error, match=message):
        pick_device(requested, **({} if what is None else {"what": what}))


def test_every_caller_goes_through_it(gpus, monkeypatch):
    from srgan.commands.upscale import distributed_rank
    from srgan.train import distributed

    gpus(2)
    assert distributed.pick_device("auto", local_rank=1) == torch.device("cuda", 1)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    gpus_none = 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus_none > 0)
    assert distributed.pick_device("auto") == torch.device("cpu")  # training: never MPS
    assert pick_device("auto") == torch.device("mps")  # inference may
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed_rank() == (3, 4, 1)


@pytest.mark.parametrize("command", ["upscale", "benchmark", "serve"])
def test_every_device_option_refuses_them_as_a_usage_error(command, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from srgan.cli import main

    if command == "serve":
        uvicorn = pytest.importorskip("uvicorn")
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server started"))

    args = {"upscale": [str(tmp_path / "a.png"), "-o", str(tmp_path / "o")],
            "benchmark": ["--data", str(tmp_path)], "serve": []}[command]
    res = CliRunner().invoke(main, [command, *args, "--device", "meta"])
    assert res.exit_code == 2, res.output
    assert "--device meta: the meta device holds no data" in res.output
    assert not (tmp_path / "o").exists()


def test_train_run_device_is_a_one_line_error(tmp_path):
    from click.testing import CliRunner

    from srgan.cli import main

    for device in ("meta", "banana"):
        res = CliRunner().invoke(main, ["train", "srresnet_x4", "--run-dir", str(tmp_path / "r"),
                                        "--set", f"run.device={device}"])
        assert res.exit_code == 1 and not isinstance(res.exception, ValueError), res.output
        assert res.output.startswith(f"Error: run.device {device}") or \
            res.output.startswith(f"Error: device '{device}'"), res.output
        assert not (tmp_path / "r").exists()
