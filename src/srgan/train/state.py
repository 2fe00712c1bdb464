"""The training state as plain data: networks, optimisers, EMA and counters (`TrainState`),
with what an exact resume also needs (RNGs: torch, CUDA, Python; each rank's data generator)
going in and out of a checkpoint beside it. Resuming from it continues bit for bit as the
uninterrupted run would have (tests/test_train_resume.py). Also the result a run returns."""

from __future__ import annotations

import random
import signal
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.train import checkpoint as ckpt
from srgan.train.config import Config
from srgan.train.ema import EMA


@dataclass
class TrainState:
    """What training changes: the networks and their optimisers, the EMA, the counters."""

    g: nn.Module
    opt_g: torch.optim.Optimizer
    d: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    ema: EMA | None = None
    step: int = 0
    bad_total: int = 0  # skipped (non-finite) steps, all told
    bad_run: int = 0  # skipped in a row, now (not saved: a resumed run starts afresh)
    best_psnr: float | None = None
    best_step: int = 0
    patches: int = 0
    train_seconds: float = 0.0

    @property
    def export_net(self) -> nn.Module:
        """The weights that validation measures and export writes: the EMA when enabled."""
        return self.ema.model if self.ema is not None else self.g

    @property
    def optimisers(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.opt_g, self.opt_d) if o is not None]

    def counters(self) -> dict[str, Any]:
        return {"bad_total": self.bad_total, "best_psnr": self.best_psnr,
                "best_step": self.best_step, "patches": self.patches,
                "train_seconds": self.train_seconds}

    def to_checkpoint(self, config: str, data: list[Any], rng: dict[str, Any]) -> dict[str, Any]:
        """Everything for an exact resume; `data` holds each rank's data generator state."""
        return {
            "step": self.step,
            "config": config,
            "generator": self.g.state_dict(),
            "discriminator": self.d.state_dict() if self.d is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "rng": rng,
            "data": data,
            "world_size": len(data),
            "counters": self.counters(),
        }

    def to_best(self, config: str) -> dict[str, Any]:
        """checkpoints/best.pt: the generator (and EMA) of the validation just run."""
        return {
            "kind": "best", "step": self.step, "config": config,
            "generator": self.g.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "counters": {"best_psnr": self.best_psnr, "best_step": self.step},
        }

    def load(self, state: dict[str, Any]) -> None:
        """Networks, EMA, optimisers and counters from a `to_checkpoint` dict (checked first
        with `check_compatible`); the RNGs and data are the caller's (`restore_rng`)."""
        self.g.load_state_dict(state["generator"])
        if self.d is not None:
            self.d.load_state_dict(state["discriminator"])
        if self.ema is not None:
            if state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            else:  # EMA switched on when resuming: start it from the current weights
                self.ema.model.load_state_dict(self.g.state_dict())
        self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_d is not None and state.get("opt_d") is not None:
            self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        c = state["counters"]
        self.bad_total = int(c["bad_total"])
        self.best_psnr = c["best_psnr"]
        self.best_step = int(c["best_step"])
        self.patches = int(c["patches"])
        self.train_seconds = float(c["train_seconds"])


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    finished: bool
    stopped: str = ""  # "", "time limit", "SIGTERM", "SIGINT"
    generator: Path | None = None
    best_psnr: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)  # logged windows

    @property
    def exit_code(self) -> int:
        if self.stopped in ("SIGTERM", "SIGINT"):
            return 128 + int(getattr(signal, self.stopped))
        return 0


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random states (torch, Python, and CUDA's on a GPU)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(rng["torch"].cpu())
    random.setstate(_as_tuple(rng["python"]))
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"].cpu(), device)


# the config keys that decide the networks' shapes: a checkpoint must agree on them
ARCHITECTURE = (("model", "scale"), ("model", "num_blocks"), ("model", "channels"),
                ("discriminator", "base_channels"))


def check_compatible(cfg: Config, ts: TrainState, state: dict[str, Any]) -> None:
    """A one-line CheckpointError when `state` was written for other networks than `ts`'s
    (an edited config.toml, a checkpoint copied from another run), naming the config key or
    the tensor that differs; nothing is changed, so the caller may try another checkpoint."""
    text = state.get("config")
    try:
        stored = tomllib.loads(text) if isinstance(text, str) else {}
    except tomllib.TOMLDecodeError:
        stored = {}
    for section, key in ARCHITECTURE:
        if section == "discriminator" and ts.d is None:
            continue
        table = stored.get(section)
        was = table.get(key) if isinstance(table, dict) else None
        now = getattr(getattr(cfg, section), key)
        if was is not None and was != now:
            raise ckpt.CheckpointError(
                f"checkpoint does not match the run's config: {section}.{key} is {was} in the "
                f"checkpoint, {now} in the config")
    nets = [("generator", ts.g)] + ([("discriminator", ts.d)] if ts.d is not None else [])
    for name, net in nets:
        _check_tensors(name, net, state.get(name))
    groups = [len(g["params"]) for g in (state.get("opt_g") or {}).get("param_groups", [])]
    if groups != [len(g["params"]) for g in ts.opt_g.param_groups]:
        raise ckpt.CheckpointError("checkpoint does not match the run's config: its generator "
                                   "optimiser holds other parameters")


def _check_tensors(name: str, net: nn.Module, saved: Any) -> None:
    if not isinstance(saved, dict):
        if name == "discriminator":
            raise ckpt.CheckpointError("checkpoint has no discriminator (a stage-1 run?)")
        raise ckpt.CheckpointError(f"checkpoint has no {name} weights")
    own = net.state_dict()
    for key in [*own, *(k for k in saved if k not in own)]:
        got, want = saved.get(key), own.get(key)
        if not (isinstance(got, torch.Tensor) and want is not None and got.shape == want.shape):
            raise ckpt.CheckpointError(
                f"checkpoint does not match the run's config: {name} tensor {key} is "
                f"{_shape(got)} in the checkpoint, {_shape(want)} for the config")


def _shape(x: Any) -> str:
    if not isinstance(x, torch.Tensor):
        return "absent" if x is None else f"not a tensor ({type(x).__name__})"
    return "x".join(map(str, x.shape)) or "a scalar"


def _as_tuple(x: Any) -> Any:
    """random.setstate needs tuples all the way down (a checkpoint may hold lists)."""
    if isinstance(x, list | tuple):
        return tuple(_as_tuple(v) for v in x)
    return x
