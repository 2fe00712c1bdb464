"""Training checkpoints: atomic writes, last-K rotation, and loading that never unpickles
objects (torch.load(weights_only=True)) and falls back past truncated files.

A checkpoint holds only tensors, numbers, strings, lists, tuples and dicts: model, EMA and
optimiser state dicts, the step, RNG states (torch, CUDA, Python, each rank's data
generator) and a few counters. The LR schedule is a pure function of the step, so it needs
no state of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from srgan.atomic import atomic_write

FORMAT = "srgan-train-checkpoint"
VERSION = 1
NAME_RE = re.compile(r"step_(\d+)\.pt$")


class CheckpointError(ValueError):
    """No usable checkpoint, or a checkpoint that is not ours."""


def checkpoint_name(step: int) -> str:
    return f"step_{step:09d}.pt"


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """torch.save that leaves either the old file or the complete new one, whatever happens."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int) -> Path:
    """Write `folder/step_N.pt` and delete all but the newest `keep` step checkpoints."""
    state = {"format": FORMAT, "version": VERSION, **state}
    path = atomic_torch_save(state, Path(folder) / checkpoint_name(step))
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Step checkpoints in `folder`, oldest first (best.pt and temp files excluded)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME_RE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load one checkpoint safely; a truncated or foreign file raises CheckpointError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # zip errors, EOF, unpickling refused: all mean "not usable"
        why = f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{path}: unreadable checkpoint ({why})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an srgan training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state.get('version')} unsupported")
    return state


def load_latest(
    folder: Path, map_location: str | torch.device = "cpu", log=print,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint in `folder` that loads and passes `check` (which raises
    CheckpointError for one that does not suit the run); damaged or unsuitable newer ones are
    reported and skipped."""
    candidates = list_checkpoints(folder)
    if not candidates:
        raise CheckpointError(f"no checkpoint in {folder}")
    errors: dict[str, list[str]] = {}  # reason -> checkpoint names
    for path in reversed(candidates):
        try:
            state = load_checkpoint(path, map_location)
            if check is not None:
                try:
                    check(state)
                except CheckpointError as exc:
                    raise CheckpointError(f"{path}: {exc}") from None
            return path, state
        except CheckpointError as exc:
            errors.setdefault(str(exc).removeprefix(f"{path}: "), []).append(path.name)
            log(f"warning: {exc}; trying the previous checkpoint")
    raise CheckpointError(f"no usable checkpoint in {folder}: " + "; ".join(
        f"{', '.join(names)}: {why}" for why, names in errors.items()))
