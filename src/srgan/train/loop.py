"""The training loop, for both stages of SRGAN: nanoGPT's train.py in a class.

One step (`Trainer.train_step`), top to bottom: the learning rate of this step
(stage.set_lr), a batch (data, then the callbacks), the stage's losses and gradients
(`srgan.train.stages`: stage 1 the content loss, stage 2 also the GAN terms and the
discriminator), one host-device sync, then the optimiser steps and the EMA, or a skip.

The sync: the losses, a "non-finite" flag and a "stop" flag travel in one small tensor
(all-reduced under DDP so every rank takes the same decision). A step whose loss or gradients
are not finite is skipped (no optimiser step, BatchNorm statistics restored).

Around the loop, each in its own module: the training state as plain data (state), the
networks' set-up (build), validation and best.pt (validation), metric windows (logs), signals
and the time limit (stop), divergence and ETA checks (guard), and callbacks for outside code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srgan.data import (
    RealisticTrainingSet,
    TrainingSet,
    ValImage,
    load_training_set,
    load_validation_set,
)
from srgan.device import TorchrunEnv
from srgan.nets import SRResNet
from srgan.train import build
from srgan.train import checkpoint as ckpt
from srgan.train.build import bn_buffers, choose_amp, copy_all, load_init_generator
from srgan.train.callbacks import TrainCallback, batch_through
from srgan.train.config import Config
from srgan.train.distributed import all_gather_object, all_reduce_max_
from srgan.train.ema import EMA
from srgan.train.guard import DivergenceWatch, eta_warning
from srgan.train.logs import MetricWindow, RunLogger
from srgan.train.stages import adam, stage_class
from srgan.train.state import (
    TrainResult,
    TrainState,
    check_compatible,
    restore_rng,
    rng_state,
)
from srgan.train.stop import GO, SIGNALLED, TIME_LIMIT, StopFlag
from srgan.train.validation import save_best, validate

ETA_CHECK_STEPS = 12  # warn about a very long run once this many steps show the rate


class TrainingDiverged(RuntimeError):
    """Too many non-finite losses (in a row, or most recent steps); the last good checkpoint
    is left as it was."""


@dataclass
class StepOutcome:
    names: list[str]  # logged quantities: "loss", "content_mse", "adv", "d_loss", ...
    values: list[float]
    bad: bool  # non-finite: the step was skipped
    stop_code: float  # 0 go on, 1 signal, 2 time limit (max over ranks)
    lr: float


class Trainer:
    """One run: its state (`TrainState`: networks, optimisers, EMA, counters), its stage,
    its data, and the loop that trains them. `say` receives the lines meant for the user."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        dist: TorchrunEnv,
        device: torch.device,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.dist, self.device = cfg, run_dir, dist, device
        self.say = log
        t, m = cfg.train, cfg.model
        self.amp, self.amp_reason = choose_amp(t.amp, device)
        # channels_last pays off with cuDNN/tensor cores and with oneDNN on the CPU alike: the
        # crops arrive channels_last, and contiguous weights make oneDNN reorder every layer
        # (bf16 training 2.4x faster on an AVX-512 BF16 CPU; benchmarks/train_throughput.py).
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(cfg.run.seed)  # same initial weights on every rank
        random.seed(cfg.run.seed)
        # Losses first: a missing VGG must fail before minutes of image decoding.
        content = build.content_loss(cfg, device, self.memory_format)
        stage = stage_class(cfg)
        g = SRResNet(m.scale, m.num_blocks, m.channels).to(device)
        d, opt_d = stage.discriminator(cfg, device, self.memory_format)
        if m.init:
            g.load_state_dict(load_init_generator(m.init, cfg).state_dict())
        build.freeze_parameters(g, m.freeze)
        g.to(memory_format=self.memory_format)
        opt_g = adam(g.parameters(), t.lr, cfg, device)
        ema = EMA(g, t.ema) if t.ema > 0 else None
        self.state = TrainState(g, opt_g, d, opt_d, ema)
        self.stage = stage(cfg, self.state, content, self.amp, device)

        self.data: TrainingSet | RealisticTrainingSet | None = None
        self.val: list[ValImage] = []
        self._buffers = bn_buffers(g, d)
        self._snapshot = [b.clone() for b in self._buffers]

    # ------------------------------------------------------------------ plumbing

    def log(self, text: str) -> None:
        if self.say is not None and self.dist.is_main:
            self.say(text)

    def load_data(self) -> None:
        c, d = self.cfg, self.cfg.data
        data_device = self.device if d.device == "auto" else torch.device(d.device)
        t0 = time.monotonic()
        self.data = load_training_set(
            d.train, d.crop, c.model.scale, lr_folders=d.train_lr, device=data_device,
            max_images=d.max_images, log=self.log, augment=d.augment, sample=d.sample,
            quantize_lr=d.quantize_lr, seed=c.run.seed * 1_000_003 + 17 + self.dist.rank,
            out_device=self.device,
        )
        mpx = self.data.hr.pixels.numel() / 1e6
        self.log(f"training set: {len(self.data)} images, {mpx:.1f} Mpx, decoded in "
                 f"{time.monotonic() - t0:.1f}s onto {data_device}")
        if d.degradation == "realistic":
            self.data = RealisticTrainingSet(self.data, c.degradation, workers=d.workers)
            self.log(f"LR: realistic degradations (blur, resize, noise, JPEG) in {d.workers} "
                     "worker process(es)" if d.workers else "LR: realistic degradations, inline")
        if d.val and self.dist.is_main:
            self.val = load_validation_set(d.val, c.model.scale, self.device, d.val_max_images,
                                           log=self.log, lr_folder=d.val_lr)
            what = f"real LR from {d.val_lr}" if d.val_lr else "bicubic LR"
            self.log(f"validation set: {len(self.val)} images from {d.val} ({what})")

    def wrap(self) -> None:
        """DistributedDataParallel under torchrun, then torch.compile if asked."""
        self.stage.wrap(ddp=self.dist.enabled, compile=self.cfg.train.compile)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume (collective under DDP: every rank must call it)."""
        assert self.data is not None
        data_states = all_gather_object(self.dist, self.data.state_dict())
        return self.state.to_checkpoint(self.cfg.to_toml(), data_states, rng_state(self.device))

    def check_checkpoint(self, state: dict[str, Any]) -> None:
        """CheckpointError when `state` holds other networks than this run's."""
        check_compatible(self.cfg, self.state, state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a `state_dict` back (`check_checkpoint` first: nothing is loaded from a
        checkpoint of other networks)."""
        self.check_checkpoint(state)
        self.state.load(state)
        restore_rng(state["rng"], self.device)
        data_states = state["data"]
        if self.data is not None:
            if self.dist.rank < len(data_states):
                self.data.load_state_dict(data_states[self.dist.rank])
            if len(data_states) != self.dist.world_size:
                self.log(f"warning: checkpoint was written by {len(data_states)} processes, "
                         f"now {self.dist.world_size}: the crops will differ from an "
                         "uninterrupted run")
        copy_all(self._snapshot, self._buffers)

    def save_checkpoint(self) -> Path | None:
        state = self.state_dict()  # collective: all ranks
        if not self.dist.is_main:
            return None
        return ckpt.save_checkpoint(state, self.run_dir / "checkpoints", self.state.step,
                                    self.cfg.log.keep)

    # ------------------------------------------------------------------ one step

    def train_step(self, want_stop: float = GO,
                   callbacks: Sequence[TrainCallback] = ()) -> StepOutcome:
        """One complete step: batch, losses, gradients, one sync, optimiser steps (or a skip).

        `want_stop` (> 0: stop after this step) is max-reduced over ranks with the NaN flag, so
        all processes stop, or skip, together.
        """
        assert self.data is not None
        s = self.state
        lr_now = self.stage.set_lr()
        lr_img, hr = self.data.batch(self.cfg.train.batch_size)
        lr_img, hr = batch_through(callbacks, s, s.step + 1, lr_img, hr)
        copy_all(self._snapshot, self._buffers)
        out = self.stage.step(lr_img, hr)
        bad = out.bad()
        flags = torch.stack([bad.float(), bad.new_full((), want_stop, dtype=torch.float32)])
        all_reduce_max_(self.dist, flags)
        host = torch.cat([flags, torch.stack([v.float() for v in out.values])]).tolist()
        is_bad = host[0] > 0
        if is_bad:
            copy_all(self._buffers, self._snapshot)  # undo BN statistics of the bad pass
            for opt in s.optimisers:
                opt.zero_grad(set_to_none=True)
            s.bad_total += 1
            s.bad_run += 1
        else:
            s.bad_run = 0
            for opt in s.optimisers:
                opt.step()
            if s.ema is not None:
                s.ema.update(s.g, s.step)
        s.step += 1
        s.patches += self.cfg.train.batch_size * self.dist.world_size
        return StepOutcome(out.names, host[2:], is_bad, host[1], lr_now)

    def probe_step(self, batch: int) -> None:
        """One forward and backward at `batch` on random crops that leaves no trace: BatchNorm
        statistics restored, gradients dropped, the global random state untouched (what the
        memory check measures before the first real step)."""
        crop, scale = self.cfg.data.crop, self.cfg.model.scale
        gen = torch.Generator().manual_seed(0)
        hr = torch.rand(batch, 3, crop, crop, generator=gen).to(self.device)
        lr = torch.rand(batch, 3, crop // scale, crop // scale, generator=gen).to(self.device)
        copy_all(self._snapshot, self._buffers)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.stage.step(lr, hr)
        copy_all(self._buffers, self._snapshot)
        for opt in self.state.optimisers:
            opt.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ validation

    def _validate(self, logger: RunLogger) -> dict[str, float]:
        """Validate the weights that would be exported, log the metrics, and keep them as
        checkpoints/best.pt when the PSNR improved."""
        s = self.state
        metrics = validate(s.export_net, self.val, s.step, strips=self.cfg.log.val_images,
                           folder=self.run_dir / "val", logger=logger,
                           memory_format=self.memory_format, niqe=self.cfg.log.val_niqe)
        logger.scalars(s.step, metrics, prefix="val")
        improved = s.best_psnr is None or metrics["psnr_y"] > s.best_psnr
        if improved:
            s.best_psnr, s.best_step = metrics["psnr_y"], s.step
            save_best(s, self.cfg.to_toml(), self.run_dir / "checkpoints")
        logger.message(
            f"step {s.step}: val PSNR-Y {metrics['psnr_y']:.3f} dB, SSIM-Y "
            f"{metrics['ssim_y']:.4f}"
            + (f", NIQE {metrics['niqe']:.3f}" if "niqe" in metrics else "")
            + (" (best)" if improved else f" (best {s.best_psnr:.3f})")
        )
        return metrics

    # ------------------------------------------------------------------ the loop

    def _diverged(self, why: str, logger: RunLogger) -> None:
        s = self.state
        last = ckpt.list_checkpoints(self.run_dir / "checkpoints")
        where = f"The last good checkpoint is {last[-1]}" if last else (
            "No checkpoint was written yet")
        logger.event("diverged", step=s.step, reason=why, total=s.bad_total)
        raise TrainingDiverged(
            f"training diverged: {why} (step {s.step}); stopping, no weights exported. "
            f"{where}. Try a lower train.lr, train.grad_clip > 0, or check the training images."
        )

    def _report_skip(self, logger: RunLogger, first: bool) -> None:
        s = self.state
        logger.event("nonfinite", step=s.step, run=s.bad_run, total=s.bad_total)
        if first:  # once: later ones are counted in log.jsonl
            logger.message(f"warning: step {s.step}: non-finite loss or gradient, step "
                           "skipped (log.jsonl counts them; many in a row, or most steps, "
                           "stop the run)")

    def _eta_check(self, logger: RunLogger, per_step: float, left: float | None) -> None:
        """Warn once the rate is known when the rest of the run will take hours."""
        steps, step = self.cfg.train.steps, self.state.step
        warning = eta_warning(self.run_dir, steps - step, per_step, left)
        if warning:
            logger.message(warning)
            logger.event("eta", step=step, seconds_per_step=per_step,
                         eta_s=per_step * (steps - step))

    def _stopped(self, logger: RunLogger, reason: str, result: TrainResult) -> None:
        path = self.save_checkpoint()
        step = self.state.step
        result.stopped = reason
        logger.event("stopped", step=step, reason=reason,
                     checkpoint=str(path) if path else None)
        logger.message(f"stopped at step {step} ({reason}); checkpoint "
                       f"{path}; continue with: srgan train --resume {self.run_dir}")

    def _progress(self, logger: RunLogger, window: MetricWindow, out: StepOutcome,
                  stop_code: float) -> None:
        """The progress bar, every step (it never lags), with a postfix every 10 steps."""
        step, last = self.state.step, self.cfg.train.steps
        postfix = None
        if step % 10 == 0 or step == last or stop_code:
            loss = window.smooth_loss
            postfix = {"loss": f"{loss:.4g}" if loss is not None else "nan",
                       "lr": f"{out.lr:.2g}", "patches/s": f"{window.rate(step):.0f}"}
        logger.progress(step, postfix)

    def fit(self, logger: RunLogger, time_limit: float | None = None,
            callbacks: Sequence[TrainCallback] = ()) -> TrainResult:
        """Train to train.steps, or until a signal, the time limit or divergence stops it."""
        assert self.data is not None
        t, lg, s = self.cfg.train, self.cfg.log, self.state
        stop = StopFlag()
        stop.install()
        result = TrainResult(self.run_dir, s.step, finished=False, best_psnr=s.best_psnr)
        window = MetricWindow(s.step, t.batch_size * self.dist.world_size)
        t_start = time.monotonic()
        over_time = (lambda: False) if time_limit is None else (
            lambda: time.monotonic() - t_start > time_limit)
        watch = DivergenceWatch(t.max_bad_steps)
        first_step, rate_t0 = s.step, 0.0
        warned_bad = False
        try:
            while s.step < t.steps:
                want_stop = TIME_LIMIT if over_time() else SIGNALLED if stop.signum else GO
                out = self.train_step(want_stop, callbacks)
                stop_code = out.stop_code
                if not stop_code and not self.dist.enabled and over_time():
                    stop_code = TIME_LIMIT  # passed within this step: stop now, not a step on
                if out.bad:
                    window.skip()
                    self._report_skip(logger, first=not warned_bad)
                    warned_bad = True
                diverged = watch.add(out.bad, s.bad_run)
                if diverged is None and (s.step >= t.steps or stop_code == TIME_LIMIT):
                    diverged = watch.at_end()  # a short run that was mostly skipped
                if diverged is not None:
                    self._diverged(diverged, logger)
                if not out.bad:
                    window.add(out.names, out.values)
                self._progress(logger, window, out, stop_code)

                # The ETA, once the rate is known (the first step, with its allocations and
                # one-off setup, is left out of it).
                done = s.step - first_step
                if done == 1:
                    rate_t0 = time.monotonic()
                elif done == ETA_CHECK_STEPS and s.step < t.steps:
                    per_step = (time.monotonic() - rate_t0) / (done - 1)
                    left = None if time_limit is None else time_limit - (
                        time.monotonic() - t_start)
                    self._eta_check(logger, per_step, left)

                for cb in callbacks:
                    cb.on_step_end(s)
                if s.step % lg.every == 0 or s.step == t.steps or stop_code:
                    scalars, seconds = window.close(s.step, out.lr)
                    s.train_seconds += seconds
                    logger.scalars(s.step, scalars)
                    result.history.append({"step": s.step, **scalars})
                if self.val and (s.step % lg.val_every == 0 or s.step == t.steps):
                    self._validate(logger)
                if stop_code:
                    self._stopped(logger, stop.reason(stop_code), result)
                    break
                if s.step % lg.ckpt_every == 0 or s.step == t.steps:
                    self.save_checkpoint()
        finally:
            stop.restore()
        result.step, result.best_psnr = s.step, s.best_psnr
        result.finished = s.step >= t.steps and not result.stopped
        for cb in callbacks:
            cb.on_fit_end(s, result)
        return result
