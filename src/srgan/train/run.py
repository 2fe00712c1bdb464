"""`run_training`: one run from start (or resume) to exported weights, around the Trainer.

Before anything is decoded: the batch is checked against memory, the run folder is locked
(rank 0, until the end) and its resolved config written with absolute data paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from srgan.atomic import atomic_write
from srgan.device import TorchrunEnv
from srgan.train import checkpoint as ckpt
from srgan.train.callbacks import TrainCallback
from srgan.train.config import Config, ConfigError
from srgan.train.distributed import barrier, broadcast_object, init_distributed
from srgan.train.export import export_run_generator
from srgan.train.guard import (
    RunLock,
    check_batch_fits,
    check_measured_batch,
    check_network_fits,
)
from srgan.train.logs import RunLogger
from srgan.train.loop import Trainer
from srgan.train.state import TrainResult


def prepare_run_dir(cfg: Config, run_dir: Path, resuming: bool) -> None:
    """Create the run folder and write the resolved config (rank 0)."""
    if not resuming:
        taken = (run_dir / "log.jsonl").exists() or ckpt.list_checkpoints(run_dir / "checkpoints")
        if taken:
            raise ConfigError(
                f"run folder {run_dir} already holds a run; continue it with "
                f"`srgan train --resume {run_dir}`, or choose another --set run.name=..."
            )
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    text = cfg.to_toml(header="srgan training config, resolved; resume with: "
                              f"srgan train --resume {run_dir}")
    atomic_write(run_dir / "config.toml", lambda fh: fh.write(text.encode("utf-8")))


def check_run_folder(run_dir: Path) -> None:
    """A run folder, or a part of it, that is a file (a damaged or hand-edited folder) is
    named as such, instead of `[Errno 17] File exists` from the first mkdir."""
    parts = {run_dir: "the run", run_dir / "checkpoints": "the checkpoints",
             run_dir / "val": "the validation images", run_dir / "tb": "TensorBoard's logs"}
    for path, what in parts.items():
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            raise ConfigError(f"{path} is not a folder ({what} go there): move that file "
                              "aside, or give this run another --run-dir")


def check_outside_data(cfg: Config, run_dir: Path) -> None:
    """A run folder inside a training or validation folder would put its validation images
    among the training images of every later run that reads that folder: refused."""
    from srgan.outputs import is_within

    d = cfg.data
    named = [(f, "data.train") for f in d.train] + [(f, "data.train_lr") for f in d.train_lr]
    named += [(f, key) for f, key in ((d.val, "data.val"), (d.val_lr, "data.val_lr")) if f]
    for folder, key in named:
        if is_within(run_dir, Path(folder)):
            raise ConfigError(f"run folder {run_dir} is inside {folder} ({key}): its "
                              "validation images and checkpoints would land among the data; "
                              "give a --run-dir outside the data folders")


def _resolve_val_set(cfg: Config) -> None:
    """data.val may name a standard set (`Set5`), found like `srgan benchmark` finds it:
    $SRGAN_DATA_ROOT, then ../shared/data/benchmark. A folder that exists is kept as given."""
    if not cfg.data.val or Path(cfg.data.val).is_dir():
        return
    from srgan.data import DataError
    from srgan.evaluate.methods import resolve_dataset

    try:
        cfg.data.val = str(resolve_dataset(cfg.data.val, what="data.val"))
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None


def run_training(
    cfg: Config,
    run_dir: Path,
    resume: bool = False,
    time_limit: float | None = None,
    callbacks: Sequence[TrainCallback] = (),
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train `cfg` into `run_dir` (resuming from its newest usable checkpoint if `resume`).

    Works in a single process or under torchrun (WORLD_SIZE > 1: DDP, rank 0 writes). Rank 0
    holds a lock on the run folder from before its first write to the end. `callbacks` go to
    `Trainer.fit`.
    """
    say = log or (lambda s: None)
    dist_info, device = init_distributed(cfg.run.device)
    if not resume:  # pin the name, origin and data paths, so a resumed run reads the same
        cfg.run.name = cfg.run.name or run_dir.resolve().name
        cfg.run.based_on = cfg.run.based_on or cfg.source
        _resolve_val_set(cfg)
        cfg.absolute_paths()
    problem = None
    lock = RunLock(run_dir)
    if dist_info.is_main:
        try:
            cpu_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if device.type == "cpu" else 1
            check_run_folder(run_dir)
            check_outside_data(cfg, run_dir)
            check_network_fits(cfg, device)  # the architecture, before it is built
            check_batch_fits(cfg, device, cpu_ranks)  # before minutes of image decoding
            lock.acquire()
            prepare_run_dir(cfg, run_dir, resume)
        except (ConfigError, OSError) as exc:
            lock.release()
            problem = str(exc)
    problem = broadcast_object(dist_info, problem)  # every rank stops, not only rank 0
    if problem is not None:
        raise ConfigError(problem)
    try:
        return _train(cfg, run_dir, dist_info, device, resume, time_limit, callbacks, say, log)
    finally:
        lock.release()


def _train(
    cfg: Config, run_dir: Path, dist_info: TorchrunEnv, device: torch.device, resume: bool,
    time_limit: float | None, callbacks: Sequence[TrainCallback], say: Callable[[str], None],
    log: Callable[[str], None] | None,
) -> TrainResult:
    trainer = Trainer(cfg, run_dir, dist_info, device, log=say)
    state = trainer.state
    trainer.load_data()
    resumed_from = None
    if resume:
        resumed_from, saved = ckpt.load_latest(
            run_dir / "checkpoints", map_location=device, log=trainer.log,
            check=trainer.check_checkpoint,  # another architecture: skipped
        )
        trainer.load_state_dict(saved)
        del saved
    trainer.wrap()
    if not dist_info.enabled:  # one process: measure a step before the first real one
        measured = check_measured_batch(cfg, device, trainer.probe_step)
        if measured:
            say(measured)

    logger = RunLogger(
        run_dir, total_steps=cfg.train.steps, start_step=state.step,
        progress=cfg.log.progress, tensorboard=cfg.log.tensorboard, active=dist_info.is_main,
        say=log,
    )
    if log is not None:
        trainer.say = logger.message  # the same lines, written around the progress bar
    try:
        n_params = sum(p.numel() for p in state.g.parameters())
        logger.event(
            "resume" if resume else "start", step=state.step, device=str(device),
            world_size=dist_info.world_size, checkpoint=str(resumed_from) if resumed_from else None,
            generator_params=n_params, images=len(trainer.data or []),
        )
        trainer.log(
            f"{'resuming' if resume else 'training'} {cfg.name} ({cfg.train.stage}) on {device}"
            f"{f' x{dist_info.world_size} processes' if dist_info.enabled else ''}: "
            f"step {state.step}/{cfg.train.steps}, batch {cfg.train.batch_size}, "
            f"crop {cfg.data.crop}, generator {n_params / 1e6:.2f}M parameters"
            + (", bf16 autocast" if trainer.amp else ", fp32") + f" ({trainer.amp_reason})"
            + (f" (from {resumed_from.name})" if resumed_from else "")
        )
        if state.step >= cfg.train.steps:
            result = TrainResult(run_dir, state.step, finished=True, best_psnr=state.best_psnr)
        else:
            result = trainer.fit(logger, time_limit=time_limit, callbacks=callbacks)
        # A time-limited run ends as planned: its weights so far are exported like a finished
        # run's; a signal means "stop now": only the checkpoint.
        if result.finished or result.stopped == "time limit":
            _export(trainer, result, logger)
    finally:
        logger.close()
    barrier(dist_info)
    return result


def _export(trainer: Trainer, result: TrainResult, logger: RunLogger) -> None:
    """Training's last step, on rank 0: the run's generator.safetensors (best validated, else
    last), also after a time limit, so `srgan upscale -m RUN/generator.safetensors` works
    between segments."""
    if not trainer.dist.is_main:
        return
    state, cfg = trainer.state, trainer.cfg
    result.generator = export_run_generator(state, cfg, trainer.run_dir,
                                            trainer.dist.world_size)
    if result.finished:
        logger.event("finished", step=result.step, generator=str(result.generator),
                     best_psnr=result.best_psnr)
        skipped = (f" ({state.bad_total} of {result.step} steps skipped as non-finite)"
                   if state.bad_total else "")
        trainer.log(f"done: {result.generator}{skipped}")
    else:
        logger.event("exported", step=result.step, generator=str(result.generator),
                     best_psnr=result.best_psnr)
        trainer.log(f"weights so far (step {result.step}/{cfg.train.steps}): "
                    f"{result.generator}")
