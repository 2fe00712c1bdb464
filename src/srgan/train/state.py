"""A Trainer's complete state for an exact resume: weights, EMA, optimisers, RNGs (torch,
CUDA, Python, each rank's data generator) and counters. Resuming from it continues bit for
bit as the uninterrupted run would have (tests/test_train_resume.py)."""

from __future__ import annotations

import random
import tomllib
from typing import TYPE_CHECKING, Any

import torch

from srgan.train import checkpoint as ckpt
from srgan.train.build import copy_all
from srgan.train.distributed import all_gather_object

if TYPE_CHECKING:
    from srgan.train.loop import Trainer


def trainer_state(t: Trainer) -> dict[str, Any]:
    """Everything for an exact resume (collective under DDP: every rank must call it)."""
    assert t.data is not None
    data_states = all_gather_object(t.dist, t.data.state_dict())
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if t.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(t.device)
    return {
        "step": t.step,
        "config": t.cfg.to_toml(),
        "generator": t.g.state_dict(),
        "discriminator": t.d.state_dict() if t.d is not None else None,
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "opt_g": t.opt_g.state_dict(),
        "opt_d": t.opt_d.state_dict() if t.opt_d is not None else None,
        "rng": rng,
        "data": data_states,
        "world_size": t.dist.world_size,
        "counters": {
            "bad_total": t.bad_total,
            "best_psnr": t.best_psnr,
            "best_step": t.best_step,
            "patches": t.patches,
            "train_seconds": t.train_seconds,
        },
    }


# the config keys that decide the networks' shapes: a checkpoint must agree on them
ARCHITECTURE = (("model", "scale"), ("model", "num_blocks"), ("model", "channels"),
                ("discriminator", "base_channels"))


def check_compatible(t: Trainer, state: dict[str, Any]) -> None:
    """A one-line CheckpointError when `state` was written for other networks than `t`'s (an
    edited config.toml, a checkpoint copied from another run), naming the config key or the
    tensor that differs; nothing of `t` is changed, so the caller may try another checkpoint."""
    text = state.get("config")
    try:
        stored = tomllib.loads(text) if isinstance(text, str) else {}
    except tomllib.TOMLDecodeError:
        stored = {}
    nets = [("generator", t.g)] + ([("discriminator", t.d)] if t.d is not None else [])
    for section, key in ARCHITECTURE:
        if section == "discriminator" and t.d is None:
            continue
        table = stored.get(section)
        was = table.get(key) if isinstance(table, dict) else None
        now = getattr(getattr(t.cfg, section), key)
        if was is not None and was != now:
            raise ckpt.CheckpointError(
                f"checkpoint does not match the run's config: {section}.{key} is {was} in the "
                f"checkpoint, {now} in the config")
    for name, net in nets:
        saved = state.get(name)
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
    groups = [len(g["params"]) for g in (state.get("opt_g") or {}).get("param_groups", [])]
    if groups != [len(g["params"]) for g in t.opt_g.param_groups]:
        raise ckpt.CheckpointError("checkpoint does not match the run's config: its generator "
                                   "optimiser holds other parameters")


def restore_trainer_state(t: Trainer, state: dict[str, Any]) -> None:
    """Put a `trainer_state` back into `t` (built from the same config; `check_compatible`
    first, so that a checkpoint of other networks is refused before anything is loaded)."""
    check_compatible(t, state)
    t.g.load_state_dict(state["generator"])
    if t.d is not None:
        t.d.load_state_dict(state["discriminator"])
    if t.ema is not None:
        if state.get("ema") is not None:
            t.ema.load_state_dict(state["ema"])
        else:  # EMA switched on when resuming: start it from the current weights
            t.ema.model.load_state_dict(t.g.state_dict())
    t.opt_g.load_state_dict(state["opt_g"])
    if t.opt_d is not None and state.get("opt_d") is not None:
        t.opt_d.load_state_dict(state["opt_d"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    random.setstate(_as_tuple(rng["python"]))
    if t.device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"].cpu(), t.device)
    data_states = state["data"]
    if t.data is not None:
        if t.dist.rank < len(data_states):
            t.data.load_state_dict(data_states[t.dist.rank])
        if len(data_states) != t.dist.world_size:
            t.log(f"warning: checkpoint was written by {len(data_states)} processes, "
                  f"now {t.dist.world_size}: the crops will differ from an "
                  "uninterrupted run")
    t.step = int(state["step"])
    c = state["counters"]
    t.bad_total = int(c["bad_total"])
    t.best_psnr = c["best_psnr"]
    t.best_step = int(c["best_step"])
    t.patches = int(c["patches"])
    t.train_seconds = float(c["train_seconds"])
    copy_all(t._snapshot, t._buffers)


def _shape(x: Any) -> str:
    if not isinstance(x, torch.Tensor):
        return "absent" if x is None else f"not a tensor ({type(x).__name__})"
    return "x".join(map(str, x.shape)) or "a scalar"


def _as_tuple(x: Any) -> Any:
    """random.setstate needs tuples all the way down (a checkpoint may hold lists)."""
    if isinstance(x, list | tuple):
        return tuple(_as_tuple(v) for v in x)
    return x
