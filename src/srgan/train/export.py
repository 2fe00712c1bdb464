"""Training's last step: a run's generator (or its EMA) -> a model file in the Core safetensors
format, with a ModelCard saying how it was trained, so `srgan upscale -m FILE` can use it; at
the end of a run (`export_run_generator`), or later from a run folder or checkpoint
(`export_generator`, `load_source`). Every failure is an `ExportError`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import torch

from srgan.export.errors import ExportError
from srgan.nets import SRResNet
from srgan.train import checkpoint as ckpt
from srgan.train.config import Config, config_from_dict
from srgan.train.stages import stage_class
from srgan.train.state import TrainState
from srgan.weights import LoadedModel, ModelCard, save_generator


def _config_of(state: dict[str, Any], source: Path) -> Config:
    try:
        return config_from_dict(tomllib.loads(state["config"]), source=str(source))
    except (KeyError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ExportError(f"{source}: checkpoint has no readable training config ({exc})") from exc


def model_card(
    cfg: Config, step: int, ema: bool, val_psnr: float | None = None, world_size: int = 1
) -> ModelCard:
    t, d = cfg.train, cfg.data
    what = f"SRResNet x{cfg.model.scale} ({cfg.model.num_blocks} blocks, {cfg.model.channels} ch)"
    recipe = stage_class(cfg).recipe(cfg)
    if cfg.model.freeze:
        recipe += f"; kept fixed: {', '.join(cfg.model.freeze)}"
    folders = ", ".join(d.train)
    names = ", ".join(f"{Path(f).name}/" for f in d.train)  # no machine's paths on the card
    lr_names = ", ".join(f"{Path(f).name}/" for f in d.train_lr)
    made = ("realistic degradations (blur, resize, noise, JPEG, twice)"
            if d.degradation == "realistic" else "MATLAB-bicubic LR")
    paired = f" with paired LR from {lr_names}" if d.train_lr else f" with {made} made on the fly"
    training = (
        f"{recipe}; {step} steps of batch {t.batch_size}x{world_size}, {d.crop}px HR crops "
        f"from {names}{paired}; Adam lr {t.lr:g} ({t.schedule}"
        f"{f', warmup {t.warmup_steps}' if t.warmup_steps else ''})"
        f"{f'; EMA {t.ema:g}' if ema else ''}"
    )
    extra = {
        "config": cfg.run.based_on or cfg.source or cfg.name,
        "stage": t.stage,
        "steps": str(step),
        "weights": "ema" if ema else "raw",
        "train_data": folders,
        "train_config": cfg.to_toml(),
    }
    if val_psnr is not None:
        extra["val_psnr_y"] = f"{val_psnr:.4f}"
        extra["val_set"] = d.val
    return ModelCard(name=cfg.name, description=what, training=training, extra=extra)


def generator_from_state(state: dict[str, Any], cfg: Config, ema: bool, source: Path) -> SRResNet:
    weights = state.get("ema") if ema else state.get("generator")
    if weights is None:
        raise ExportError(
            f"{source}: no {'EMA' if ema else 'generator'} weights in this checkpoint"
            + (" (the run had train.ema = 0; export without --ema)" if ema else "")
        )
    m = cfg.model
    net = SRResNet(m.scale, m.num_blocks, m.channels)
    net.load_state_dict(weights)
    return net.eval()


def resolve_checkpoint(source: Path, best: bool = False) -> tuple[Path, dict[str, Any]]:
    """A checkpoint file, or a run folder (its newest usable checkpoint, or best.pt)."""
    source = Path(source)
    if source.is_dir():
        folder = source / "checkpoints" if (source / "checkpoints").is_dir() else source
        if best:
            path = folder / "best.pt"
            if not path.is_file():
                raise ExportError(f"{source}: {_why_no_best(source, folder)}")
            return path, ckpt.load_checkpoint(path)
        try:
            return ckpt.load_latest(folder)
        except ckpt.CheckpointError as exc:
            raise ExportError(str(exc)) from exc
    if not source.is_file():
        raise ExportError(f"{source}: no such run folder or checkpoint")
    try:
        return source, ckpt.load_checkpoint(source)
    except ckpt.CheckpointError as exc:
        raise ExportError(str(exc)) from exc


def _why_no_best(run_dir: Path, folder: Path) -> str:
    """Why a run folder has no best.pt, from its config.toml: no validation set, or no
    validation yet (a time-limited or interrupted run stopped before the first one)."""
    try:
        raw = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        val, every = raw["data"]["val"], int(raw["log"]["val_every"])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError,
            ValueError):
        return "no best.pt (no validated weights); export the newest checkpoint without --best"
    if not val:
        return ("no best.pt: the run has no validation set (data.val is empty), so no weights "
                "were validated; export the newest checkpoint without --best")
    newest = ckpt.list_checkpoints(folder)
    match = ckpt.NAME_RE.fullmatch(newest[-1].name) if newest else None
    at = f"; its newest checkpoint is step {int(match.group(1))}" if match else ""
    return (f"no best.pt yet: the run validates on {val} every {every} steps and has not "
            f"validated yet{at}. Export the newest checkpoint without --best, or train on "
            f"(srgan train --resume {run_dir})")


def load_run_generator(
    source: str | Path, ema: bool = False, best: bool = False
) -> tuple[SRResNet, ModelCard]:
    """The generator of a run folder or checkpoint, in eval mode, and its model card."""
    path, state = resolve_checkpoint(Path(source), best=best)
    cfg = _config_of(state, path)
    net = generator_from_state(state, cfg, ema, path)
    counters = state.get("counters") or {}
    val = counters.get("best_psnr") if state.get("kind") == "best" else None
    card = model_card(cfg, int(state["step"]), ema, val, int(state.get("world_size", 1)))
    return net, card


def load_source(source: str | Path, ema: bool = False, best: bool = False) -> LoadedModel:
    """A generator and its card from a shipped model's name, a .safetensors model file, a
    training run folder or a checkpoint (.pt, read with weights_only)."""
    from srgan.weights import PICKLE_SUFFIXES, ModelFileError, load_generator

    path = Path(source)
    if path.is_dir() or path.suffix.lower() in PICKLE_SUFFIXES:
        net, card = load_run_generator(path, ema=ema, best=best)
        return LoadedModel.of(net, card)
    if ema or best:
        raise ExportError(f"{source}: --ema and --best apply to run folders and checkpoints")
    try:
        return load_generator(str(source))
    except ModelFileError as exc:
        raise ExportError(str(exc)) from exc


def export_generator(
    source: str | Path, out: str | Path, ema: bool = False, best: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write the generator of a run folder or checkpoint to `out` (.safetensors)."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ExportError(f"{out}: the output must end in .safetensors")
    net, card = load_run_generator(source, ema=ema, best=best)
    return save_generator(net, out, card=card, dtype=dtype)


def export_run_generator(state: TrainState, cfg: Config, run_dir: Path,
                         world_size: int = 1) -> Path:
    """At the end of training: generator.safetensors = the best validated weights when
    log.export = "best" and a validation ran (else the last), EMA when enabled; the last
    weights also go to generator_last.safetensors when they differ from the best."""
    use_ema = state.ema is not None
    last_card = model_card(cfg, state.step, use_ema, None, world_size)
    best_path = run_dir / "checkpoints" / "best.pt"
    out = run_dir / "generator.safetensors"
    if cfg.log.export == "best" and best_path.is_file() and state.best_step != state.step:
        best = ckpt.load_checkpoint(best_path)
        net = generator_from_state(best, cfg, use_ema, best_path)
        card = model_card(cfg, int(best["step"]), use_ema, state.best_psnr, world_size)
        save_generator(net, out, card=card)
        save_generator(state.export_net, run_dir / "generator_last.safetensors", card=last_card)
        return out
    # a generator_last from an earlier segment of this run would now be stale
    (run_dir / "generator_last.safetensors").unlink(missing_ok=True)
    if state.best_step == state.step and state.best_psnr is not None:
        last_card = model_card(cfg, state.step, use_ema, state.best_psnr, world_size)
    return save_generator(state.export_net, out, card=last_card)
