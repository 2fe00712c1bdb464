"""Which device a process runs on, and its place in a torchrun launch.

One module for both: `srgan upscale`, `srgan train` and `Upscaler` read the same torchrun
variables (WORLD_SIZE, RANK, LOCAL_RANK) and resolve `--device` by the same rules, so a
process of a multi-GPU launch takes its own GPU whichever command it runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


class DeviceError(ValueError, RuntimeError):
    """A device that is not there. A ValueError for `Upscaler`'s callers, a RuntimeError for
    the trainer's (both raised it before they shared this module)."""


@dataclass(frozen=True)
class TorchrunEnv:
    """This process's place in a torchrun launch; rank 0 of one process when not launched by
    torchrun."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def torchrun_env(environ: dict[str, str] | None = None) -> TorchrunEnv:
    """Rank, world size and local rank from torchrun's environment variables."""
    env = os.environ if environ is None else environ
    return TorchrunEnv(int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0")),
                       int(env.get("WORLD_SIZE", "1")))


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def pick_device(requested: str | torch.device = "auto", local_rank: int | None = None, *,
                mps: bool = True, what: str = "--device") -> torch.device:
    """`requested` ("auto", "cpu", "cuda", "cuda:1", "mps" ...) -> a device that exists.

    "auto": a GPU when CUDA is there (the `local_rank`-th under torchrun), else MPS (when
    `mps`: inference; training keeps to CUDA or the CPU), else the CPU. A bare "cuda" with a
    `local_rank` means that rank's GPU. Raises DeviceError naming `what` was asked for
    (the option, or the config key) and what is missing."""
    if str(requested) == "auto":
        if torch.cuda.is_available():
            if local_rank is None:
                return torch.device("cuda")
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if mps and _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(requested)
    except RuntimeError as exc:
        raise DeviceError(f"device {requested!r} is not a device name (auto, cpu, cuda, "
                          "cuda:1, mps ...)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch is built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible (driver or CUDA_VISIBLE_DEVICES?)")
            raise DeviceError(f"{what} {requested}: {why}; use {what} cpu (or auto)")
        if dev.index is None and local_rank is not None:
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"{what} {requested}: only {torch.cuda.device_count()} CUDA "
                              "device(s) here")
    elif dev.type == "mps" and not _mps_available():
        raise DeviceError(f"{what} {requested}: MPS is not available here; use {what} cpu")
    elif dev.type != "cpu":
        _check_holds_data(dev, requested, what)
    return dev


def _check_holds_data(dev: torch.device, requested: object, what: str) -> None:
    """Refuse a device that names no memory (`meta` tracks only shapes) or whose backend this
    PyTorch lacks (xpu, hpu, xla ...): one tensor there and back, else a DeviceError rather
    than a traceback at the first copy."""
    if dev.type == "meta":
        raise DeviceError(f"{what} {requested}: the meta device holds no data (it only tracks "
                          f"shapes); use {what} cpu (or auto)")
    try:
        torch.zeros(1, device=dev).cpu()
    except Exception as exc:  # NotImplementedError, AssertionError, ImportError ...: unusable
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeviceError(f"{what} {requested}: this PyTorch cannot use it ({why[:120]}); "
                          f"use {what} cpu (or auto)") from None

