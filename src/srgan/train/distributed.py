"""torchrun support: one process per GPU (or CPU process with gloo), set up from the env vars
torchrun exports (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

Rank 0 does all file output (logs, validation, checkpoints, export); every rank trains.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from srgan.device import TorchrunEnv, torchrun_env
from srgan.device import pick_device as _pick_device


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this rank's GPU when CUDA is available, else the CPU (`srgan.device`)."""
    return _pick_device(requested, local_rank, mps=False, what="run.device")


def init_distributed(requested_device: str = "auto") -> tuple[TorchrunEnv, torch.device]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1.

    NCCL on CUDA, gloo on CPU. A single process returns TorchrunEnv() and does nothing.
    """
    env = torchrun_env()
    if not env.enabled:
        return TorchrunEnv(), pick_device(requested_device)
    device = pick_device(requested_device, env.local_rank)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device, timeout=timedelta(minutes=30))
        else:
            dist.init_process_group("gloo", timeout=timedelta(minutes=30))
    return env, device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: TorchrunEnv) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(info: TorchrunEnv, obj: Any) -> Any:
    """Rank 0's `obj` on every rank (e.g. an error message or the run folder)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(info: TorchrunEnv, obj: Any) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_max_(info: TorchrunEnv, tensor: torch.Tensor) -> torch.Tensor:
    """In place: the element-wise max over ranks (flags: any rank saw NaN / was signalled)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor
