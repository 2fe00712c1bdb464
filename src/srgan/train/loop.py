"""The training loop for both stages of SRGAN.

Stage 1 (`train.stage = "srresnet"`): the generator alone, content loss (paper: pixel MSE).
Stage 2 (`train.stage = "srgan"`): generator and discriminator updated alternately every step
(G first, against the current D; then D on the same batch's real and generated images).

One host-device sync per step: the losses, a "non-finite" flag and a "stop" flag travel in one
small tensor (all-reduced under DDP so every rank takes the same decision). A step whose loss
or gradients are not finite is skipped (no optimiser step, BatchNorm statistics restored).

Around the loop, each in its own module: the networks' set-up (build), exact-resume state
(state), validation and best.pt (validation), metric windows (logs), signals and the time
limit (stop), divergence and ETA checks (guard), and callbacks for outside code (callbacks).
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.data import (
    RealisticTrainingSet,
    TrainingSet,
    ValImage,
    load_training_set,
    load_validation_set,
)
from srgan.device import TorchrunEnv
from srgan.losses import ContentLoss, discriminator_loss, unsharp_mask
from srgan.nets import Discriminator, SRResNet
from srgan.train import build
from srgan.train import checkpoint as ckpt
from srgan.train.build import bn_buffers, choose_amp, copy_all, load_init_generator
from srgan.train.callbacks import TrainCallback, batch_through
from srgan.train.config import Config
from srgan.train.distributed import all_reduce_max_
from srgan.train.ema import EMA
from srgan.train.gan_terms import generator_gan_terms
from srgan.train.guard import DivergenceWatch, eta_warning
from srgan.train.logs import MetricWindow, RunLogger
from srgan.train.schedule import lr_at
from srgan.train.state import restore_trainer_state, trainer_state
from srgan.train.stop import GO, SIGNALLED, TIME_LIMIT, StopFlag
from srgan.train.validation import save_best, validate, validate_and_track, validation_due

__all__ = ["StepOutcome", "TrainCallback", "TrainResult", "Trainer", "TrainingDiverged",
           "choose_amp"]

GAN_TERMS = ("adv", "fm", "artifacts", "flat")  # logged under their own names, not content_*
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


@dataclass
class _StepLog:
    """What one step's passes report: logged 0-dim tensors, and those that must be finite."""

    names: list[str] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    checks: list[torch.Tensor] = field(default_factory=list)

    def add(self, name: str, value: torch.Tensor, check: bool = False) -> None:
        self.names.append(name)
        self.values.append(value)
        if check:
            self.checks.append(value)


class Trainer:
    """Everything a run holds: networks, optimisers, data, EMA, counters."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        dist: TorchrunEnv,
        device: torch.device,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.dist, self.device = cfg, run_dir, dist, device
        self._log = log
        t, m = cfg.train, cfg.model
        self.gan = t.stage == "srgan"
        self.amp, self.amp_reason = choose_amp(t.amp, device)
        # channels_last pays off with cuDNN/tensor cores and with oneDNN on the CPU alike: the
        # crops arrive channels_last, and contiguous weights make oneDNN reorder every layer
        # (bf16 training 2.4x faster on an AVX-512 BF16 CPU; benchmarks/train_throughput.py).
        use_cl = t.channels_last
        self.memory_format = torch.channels_last if use_cl else torch.contiguous_format
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(cfg.run.seed)  # same initial weights on every rank
        random.seed(cfg.run.seed)

        # Losses first: a missing VGG must fail before minutes of image decoding.
        self.content = ContentLoss(
            cfg.loss.content,
            vgg_scale=cfg.loss.vgg_scale,
            vgg_weights=cfg.loss.vgg_weights or "imagenet",
        ).to(device)
        if self.content.vgg is not None:
            self.content.vgg.to(memory_format=self.memory_format)

        self.g = SRResNet(m.scale, m.num_blocks, m.channels).to(device)
        self.d: Discriminator | None = None
        if self.gan:
            self.d = Discriminator(base_channels=cfg.discriminator.base_channels,
                                   antialias=cfg.discriminator.antialias).to(device)
        self.init_from = ""
        if m.init:
            self.init_from = m.init
            self.g.load_state_dict(load_init_generator(m.init, cfg).state_dict())
        build.freeze_parameters(self.g, m.freeze)
        self.g.to(memory_format=self.memory_format)
        if self.d is not None:
            self.d.to(memory_format=self.memory_format)

        betas = (t.betas[0], t.betas[1])
        fused = device.type == "cuda"
        self.opt_g = torch.optim.Adam(
            self.g.parameters(), lr=t.lr, betas=betas, weight_decay=t.weight_decay, fused=fused
        )
        self.opt_d = None
        if self.d is not None:
            self.opt_d = torch.optim.Adam(
                self.d.parameters(), lr=t.d_lr or t.lr, betas=betas,
                weight_decay=t.weight_decay, fused=fused,
            )
        self.ema = EMA(self.g, t.ema) if t.ema > 0 else None

        self.step = 0
        self.bad_total = 0
        self.bad_run = 0
        self.best_psnr: float | None = None
        self.best_step = 0
        self.patches = 0
        self.train_seconds = 0.0
        self.data: TrainingSet | RealisticTrainingSet | None = None
        self.val: list[ValImage] = []
        self._buffers = bn_buffers(self.g, self.d)
        self._snapshot = [b.clone() for b in self._buffers]
        self.g_run: nn.Module = self.g
        self.d_run: nn.Module | None = self.d
        self.d_for_g: nn.Module | None = self.d
        self.content_run: nn.Module = self.content

    # ------------------------------------------------------------------ plumbing

    def log(self, text: str) -> None:
        if self._log is not None and self.dist.is_main:
            self._log(text)

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
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_run = DDP(self.g, device_ids=ids)
            if self.d is not None:
                self.d_run = DDP(self.d, device_ids=ids)
        if self.cfg.train.compile:
            self.g_run = torch.compile(self.g_run)
            if self.d_run is not None and self.d is not None:
                self.d_run = torch.compile(self.d_run)
                self.d_for_g = torch.compile(self.d)  # D inside the generator's step
            if self.content.uses_vgg:
                self.content_run = torch.compile(self.content)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume (collective under DDP: every rank must call it)."""
        return trainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_trainer_state(self, state)

    def save_checkpoint(self) -> Path | None:
        state = self.state_dict()  # collective: all ranks
        if not self.dist.is_main:
            return None
        return ckpt.save_checkpoint(state, self.run_dir / "checkpoints", self.step,
                                    self.cfg.log.keep)

    def save_best(self) -> None:
        save_best(self)

    def validate(self, logger: RunLogger) -> dict[str, float]:
        """Y-PSNR / SSIM of the weights that would be exported (srgan.train.validation)."""
        return validate(self, logger)

    # ------------------------------------------------------------------ one step

    def _set_lr(self) -> float:
        t = self.cfg.train
        lr = lr_at(t, self.step)
        for group in self.opt_g.param_groups:
            group["lr"] = lr
        if self.opt_d is not None:
            d_lr = lr_at(t, self.step, base_lr=t.d_lr or t.lr)
            for group in self.opt_d.param_groups:
                group["lr"] = d_lr
        return lr

    def _generator_step(self, lr_img: torch.Tensor, hr_t: torch.Tensor,
                        out: _StepLog) -> torch.Tensor:
        """The generator's losses (content, and in stage 2 the GAN terms of gan_terms.py
        against the current D, whose weights get no gradient) and their backward. Returns
        the generated batch."""
        cfg = self.cfg
        self.opt_g.zero_grad(set_to_none=True)
        pixel_target = None
        if cfg.loss.usm_pixel_targets:  # sharper targets for the pixel terms only
            pixel_target = self.g.from_unit(unsharp_mask(self.g.to_unit(hr_t)))
        with self.autocast():
            sr = self.g_run(lr_img)
            g_loss, parts = self.content_run(sr, hr_t, pixel_target)
            if self.gan:
                assert self.d is not None and self.d_for_g is not None
                self.d.requires_grad_(False)
                ema = None if self.ema is None else self.ema.model
                gan_loss, gan_parts = generator_gan_terms(
                    cfg.loss, self.step, self.d, self.d_for_g, lr_img, sr, hr_t, ema)
                g_loss = g_loss + gan_loss
                parts.update(gan_parts)
        g_loss.backward()
        out.add("loss", g_loss.detach(), check=True)
        for k, v in parts.items():
            out.add(k if k in GAN_TERMS else f"content_{k}", v.detach())
        if "mse" not in parts:
            out.add("pixel_mse", torch.mean((sr.detach().float() - hr_t) ** 2))
        return sr

    def _discriminator_step(self, hr_t: torch.Tensor, sr: torch.Tensor, out: _StepLog) -> None:
        """The discriminator's loss on real and generated images, and its backward."""
        assert self.d is not None and self.d_run is not None and self.opt_d is not None
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        # Real and generated images in separate passes (own BatchNorm batch statistics),
        # each followed by its backward: the pattern DistributedDataParallel supports.
        with self.autocast():
            real_logits = self.d_run(hr_t)
            d_real = discriminator_loss(real_logits, None)
        d_real.backward()
        with self.autocast():
            fake_logits = self.d_run(sr.detach())
            d_fake = discriminator_loss(None, fake_logits)
        d_fake.backward()
        out.add("d_loss", (d_real + d_fake).detach(), check=True)
        out.add("d_real", torch.sigmoid(real_logits.detach().float()).mean())
        out.add("d_fake", torch.sigmoid(fake_logits.detach().float()).mean())

    def _clip_gradients(self, out: _StepLog) -> None:
        """train.grad_clip > 0: clip each network's gradient norm (the norms are logged)."""
        clip = self.cfg.train.grad_clip
        if clip <= 0:
            return
        gn = torch.nn.utils.clip_grad_norm_(self.g.parameters(), clip)
        out.add("grad_norm", gn.detach(), check=True)
        if self.d is not None:
            dn = torch.nn.utils.clip_grad_norm_(self.d.parameters(), clip)
            out.add("d_grad_norm", dn.detach(), check=True)

    def _forward_backward(self, lr_img: torch.Tensor, hr: torch.Tensor) -> tuple[
        list[str], list[torch.Tensor], torch.Tensor
    ]:
        """Losses and gradients of one step (no optimiser step yet).

        Returns (names, values, bad): values are 0-dim tensors to log, `bad` is a 0-dim bool
        tensor, true when a loss or gradient norm is not finite.
        """
        hr_t = self.g.from_unit(hr)  # [-1, 1], the paper's HR range
        out = _StepLog()
        sr = self._generator_step(lr_img, hr_t, out)
        if self.gan:
            self._discriminator_step(hr_t, sr, out)
        self._clip_gradients(out)
        bad = ~torch.isfinite(torch.stack([c.float() for c in out.checks])).all()
        return out.names, out.values, bad

    def train_step(self, want_stop: float = GO,
                   callbacks: Sequence[TrainCallback] = ()) -> StepOutcome:
        """One complete step: batch, losses, gradients, one sync, optimiser steps (or a skip).

        `want_stop` (> 0: stop after this step) is max-reduced over ranks with the NaN flag, so
        all processes stop, or skip, together.
        """
        assert self.data is not None
        lr_now = self._set_lr()
        lr_img, hr = self.data.batch(self.cfg.train.batch_size)
        lr_img, hr = batch_through(callbacks, self, self.step + 1, lr_img, hr)
        copy_all(self._snapshot, self._buffers)
        names, values, bad = self._forward_backward(lr_img, hr)
        flags = torch.stack([bad.float(), bad.new_full((), want_stop, dtype=torch.float32)])
        all_reduce_max_(self.dist, flags)
        host = torch.cat([flags, torch.stack([v.float() for v in values])]).tolist()
        is_bad = host[0] > 0
        if is_bad:
            copy_all(self._buffers, self._snapshot)  # undo BN statistics of the bad pass
            self.opt_g.zero_grad(set_to_none=True)
            if self.opt_d is not None:
                self.opt_d.zero_grad(set_to_none=True)
            self.bad_total += 1
            self.bad_run += 1
        else:
            self.bad_run = 0
            self.opt_g.step()
            if self.opt_d is not None:
                self.opt_d.step()
            if self.ema is not None:
                self.ema.update(self.g, self.step)
        self.step += 1
        self.patches += self.cfg.train.batch_size * self.dist.world_size
        return StepOutcome(names, host[2:], is_bad, host[1], lr_now)

    # ------------------------------------------------------------------ the loop

    def _diverged(self, why: str, logger: RunLogger) -> None:
        last = ckpt.list_checkpoints(self.run_dir / "checkpoints")
        where = f"The last good checkpoint is {last[-1]}" if last else (
            "No checkpoint was written yet")
        logger.event("diverged", step=self.step, reason=why, total=self.bad_total)
        raise TrainingDiverged(
            f"training diverged: {why} (step {self.step}); stopping, no weights exported. "
            f"{where}. Try a lower train.lr, train.grad_clip > 0, or check the training images."
        )

    def _report_skip(self, logger: RunLogger, first: bool) -> None:
        logger.event("nonfinite", step=self.step, run=self.bad_run, total=self.bad_total)
        if first:  # once: later ones are counted in log.jsonl
            logger.message(f"warning: step {self.step}: non-finite loss or gradient, step "
                           "skipped (log.jsonl counts them; many in a row, or most steps, "
                           "stop the run)")

    def _eta_check(self, logger: RunLogger, per_step: float, left: float | None) -> None:
        """Warn once the rate is known when the rest of the run will take hours."""
        steps = self.cfg.train.steps
        warning = eta_warning(self.run_dir, steps - self.step, per_step, left)
        if warning:
            logger.message(warning)
            logger.event("eta", step=self.step, seconds_per_step=per_step,
                         eta_s=per_step * (steps - self.step))

    def _stopped(self, logger: RunLogger, reason: str, result: TrainResult) -> None:
        path = self.save_checkpoint()
        result.stopped = reason
        logger.event("stopped", step=self.step, reason=reason,
                     checkpoint=str(path) if path else None)
        logger.message(f"stopped at step {self.step} ({reason}); checkpoint "
                       f"{path}; continue with: srgan train --resume {self.run_dir}")

    def fit(self, logger: RunLogger, time_limit: float | None = None,
            callbacks: Sequence[TrainCallback] = ()) -> TrainResult:
        """Train to train.steps, or until a signal, the time limit or divergence stops it."""
        assert self.data is not None
        t, lg = self.cfg.train, self.cfg.log
        stop = StopFlag()
        stop.install()
        result = TrainResult(self.run_dir, self.step, finished=False, best_psnr=self.best_psnr)
        window = MetricWindow(self.step, t.batch_size * self.dist.world_size)
        t_start = time.monotonic()
        watch = DivergenceWatch(t.max_bad_steps)
        first_step, rate_t0 = self.step, 0.0
        warned_bad = False
        try:
            while self.step < t.steps:
                want_stop = SIGNALLED if stop.signum else GO
                if time_limit is not None and time.monotonic() - t_start > time_limit:
                    want_stop = TIME_LIMIT
                out = self.train_step(want_stop, callbacks)
                lr_now, stop_code = out.lr, out.stop_code
                if (not stop_code and time_limit is not None and not self.dist.enabled
                        and time.monotonic() - t_start > time_limit):
                    stop_code = TIME_LIMIT  # passed within this step: stop now, not a step on
                if out.bad:
                    window.skip()
                    self._report_skip(logger, first=not warned_bad)
                    warned_bad = True
                diverged = watch.add(out.bad, self.bad_run)
                if diverged is None and (self.step >= t.steps or stop_code == TIME_LIMIT):
                    diverged = watch.at_end()  # a short run that was mostly skipped
                if diverged is not None:
                    self._diverged(diverged, logger)
                if not out.bad:
                    window.add(out.names, out.values)

                postfix = None
                if self.step % 10 == 0 or self.step == t.steps or stop_code:
                    loss = window.smooth_loss
                    postfix = {"loss": f"{loss:.4g}" if loss is not None else "nan",
                               "lr": f"{lr_now:.2g}", "patches/s": f"{window.rate(self.step):.0f}"}
                logger.progress(self.step, postfix)  # every step: the bar never lags

                # The ETA, once the rate is known (the first step, with its allocations and
                # one-off setup, is left out of it).
                done = self.step - first_step
                if done == 1:
                    rate_t0 = time.monotonic()
                elif done == ETA_CHECK_STEPS and self.step < t.steps:
                    per_step = (time.monotonic() - rate_t0) / (done - 1)
                    left = None if time_limit is None else time_limit - (
                        time.monotonic() - t_start)
                    self._eta_check(logger, per_step, left)

                for cb in callbacks:
                    cb.on_step_end(self)

                if self.step % lg.every == 0 or self.step == t.steps or stop_code:
                    scalars, seconds = window.close(self.step, lr_now)
                    self.train_seconds += seconds
                    logger.scalars(self.step, scalars)
                    result.history.append({"step": self.step, **scalars})

                if validation_due(self):
                    validate_and_track(self, logger)

                if stop_code:
                    self._stopped(logger, stop.reason(stop_code), result)
                    break
                if self.step % lg.ckpt_every == 0 or self.step == t.steps:
                    self.save_checkpoint()
        finally:
            stop.restore()
        result.step = self.step
        result.best_psnr = self.best_psnr
        result.finished = self.step >= t.steps and not result.stopped
        for cb in callbacks:
            cb.on_fit_end(self, result)
        return result
