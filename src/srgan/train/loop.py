"""The training loop for both stages of SRGAN.

Stage 1 (`train.stage = "srresnet"`): the generator alone, content loss (paper: pixel MSE).
Stage 2 (`train.stage = "srgan"`): generator and discriminator updated alternately every step
(G first, against the current D; then D on the same batch's real and generated images).

One host-device sync per step: the losses, a "non-finite" flag and a "stop" flag travel in one
small tensor (all-reduced under DDP so every rank takes the same decision). A step whose loss
or gradients are not finite is skipped (no optimiser step, BatchNorm statistics restored).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srgan.data import TrainingSet, ValImage, load_training_set, load_validation_set
from srgan.losses import (
    ContentLoss,
    discriminator_features,
    generator_adversarial_loss,
)
from srgan.nets import Discriminator, SRResNet
from srgan.train import checkpoint as ckpt
from srgan.train.config import Config, ConfigError
from srgan.train.distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_max_,
)
from srgan.train.ema import EMA
from srgan.train.guard import DivergenceWatch, eta_warning
from srgan.train.logs import RunLogger
from srgan.train.schedule import lr_at

HOOKS_ENV = "SRGAN_TEST_HOOKS"
ETA_CHECK_STEPS = 12  # warn about a very long run once this many steps show the rate


class TrainingDiverged(RuntimeError):
    """Too many non-finite losses (in a row, or most recent steps); the last good checkpoint
    is left as it was."""


@dataclass
class DebugHooks:
    """Fault injection for the test suite, read from $SRGAN_TEST_HOOKS (JSON). Not for users."""

    kill_at: int = 0  # SIGKILL this process right after step N
    signal_at: int = 0  # send SIGTERM to this process after step N
    nan_steps: list[int] = field(default_factory=list)  # steps (1-based) given a NaN batch
    dump_weights: str = ""  # folder: each rank writes rank<R>.pt of its G and D at the end

    @classmethod
    def from_env(cls) -> DebugHooks:
        text = os.environ.get(HOOKS_ENV, "")
        return cls(**json.loads(text)) if text else cls()


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


# ------------------------------------------------------------------------------ setup


def _load_init_generator(path_text: str, cfg: Config) -> SRResNet:
    """A stage-1 result (generator .safetensors, or its run folder) to start stage 2 from."""
    from srgan.weights import load_generator

    path = Path(path_text)
    if path.is_dir():
        candidates = [path / "generator.safetensors", path / "generator_last.safetensors"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise ConfigError(
                f"model.init: {path} has no generator.safetensors; finish or export that run "
                f"first (srgan export {path} -o {path}/generator.safetensors)"
            )
        path = found
    # A shipped model's name (model.init = "srresnet_x4") stays a string for the lookup.
    net = load_generator(path if path.exists() else path_text)
    m = cfg.model
    got = (net.scale, net.num_blocks, net.channels)
    if got != (m.scale, m.num_blocks, m.channels):
        raise ConfigError(
            f"model.init: {path} is scale/blocks/channels {got}, the config asks for "
            f"{(m.scale, m.num_blocks, m.channels)}"
        )
    return net


def choose_amp(mode: str, device: torch.device) -> tuple[bool, str]:
    """(bf16 autocast?, why): `auto` takes bf16 on CUDA and on CPUs that multiply it natively
    (AVX-512 BF16, AMX), where it is about 1.8x faster to train; fp32 where it is emulated."""
    if mode == "bf16":
        return True, "train.amp = bf16"
    if mode == "none":
        return False, "train.amp = none"
    if device.type == "cuda":
        return True, "auto: CUDA"
    if device.type == "cpu":
        from srgan.cpu import native_bf16

        native, why = native_bf16()
        return native, f"auto: {why}"
    return False, f"auto: no bf16 autocast on {device.type}"


def _bn_buffers(*modules: nn.Module | None) -> list[torch.Tensor]:
    return [b for m in modules if m is not None for b in m.buffers()]


def _copy_all(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    if not dst:
        return
    try:
        torch._foreach_copy_(dst, src)
    except (AttributeError, RuntimeError):
        for d, s in zip(dst, src, strict=True):
            d.copy_(s)


class _StopFlag:
    """SIGTERM/SIGINT set a flag that the loop reads at its next sync point, so the run ends
    with a checkpoint between two steps instead of in the middle of one."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum:  # second signal: give up at once
            signal.signal(signum, self._old.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()


# ------------------------------------------------------------------------------ trainer


class Trainer:
    """Everything a run holds: networks, optimisers, data, EMA, counters."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        dist: DistInfo,
        device: torch.device,
        hooks: DebugHooks | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.dist, self.device = cfg, run_dir, dist, device
        self.hooks = hooks or DebugHooks()
        self._log = log
        t, m = cfg.train, cfg.model
        self.gan = t.stage == "srgan"
        self.amp, self.amp_reason = choose_amp(t.amp, device)
        # channels_last pays off with cuDNN/tensor cores; on CPU (oneDNN) it is no faster.
        use_cl = t.channels_last and device.type == "cuda"
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
            self.d = Discriminator(base_channels=cfg.discriminator.base_channels).to(device)
        self.init_from = ""
        if m.init:
            self.init_from = m.init
            self.g.load_state_dict(_load_init_generator(m.init, cfg).state_dict())
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
        self.data: TrainingSet | None = None
        self.val: list[ValImage] = []
        self._buffers = _bn_buffers(self.g, self.d)
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
        if d.val and self.dist.is_main:
            self.val = load_validation_set(d.val, c.model.scale, self.device, d.val_max_images,
                                           log=self.log)
            self.log(f"validation set: {len(self.val)} images from {d.val}")

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
        assert self.data is not None
        data_states = all_gather_object(self.dist, self.data.state_dict())
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "step": self.step,
            "config": self.cfg.to_toml(),
            "generator": self.g.state_dict(),
            "discriminator": self.d.state_dict() if self.d is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "rng": rng,
            "data": data_states,
            "world_size": self.dist.world_size,
            "counters": {
                "bad_total": self.bad_total,
                "best_psnr": self.best_psnr,
                "best_step": self.best_step,
                "patches": self.patches,
                "train_seconds": self.train_seconds,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["generator"])
        if self.d is not None:
            if state.get("discriminator") is None:
                raise ckpt.CheckpointError("checkpoint has no discriminator (a stage-1 run?)")
            self.d.load_state_dict(state["discriminator"])
        if self.ema is not None:
            if state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            else:  # EMA switched on when resuming: start it from the current weights
                self.ema.model.load_state_dict(self.g.state_dict())
        self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_d is not None and state.get("opt_d") is not None:
            self.opt_d.load_state_dict(state["opt_d"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        random.setstate(_as_tuple(rng["python"]))
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        data_states = state["data"]
        if self.data is not None:
            if self.dist.rank < len(data_states):
                self.data.load_state_dict(data_states[self.dist.rank])
            if len(data_states) != self.dist.world_size:
                self.log(f"warning: checkpoint was written by {len(data_states)} processes, "
                         f"now {self.dist.world_size}: the crops will differ from an "
                         "uninterrupted run")
        self.step = int(state["step"])
        c = state["counters"]
        self.bad_total = int(c["bad_total"])
        self.best_psnr = c["best_psnr"]
        self.best_step = int(c["best_step"])
        self.patches = int(c["patches"])
        self.train_seconds = float(c["train_seconds"])
        _copy_all(self._snapshot, self._buffers)

    def save_checkpoint(self) -> Path | None:
        state = self.state_dict()  # collective: all ranks
        if not self.dist.is_main:
            return None
        return ckpt.save_checkpoint(state, self.run_dir / "checkpoints", self.step,
                                    self.cfg.log.keep)

    def save_best(self) -> None:
        state = {
            "kind": "best", "step": self.step, "config": self.cfg.to_toml(),
            "generator": self.g.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "counters": {"best_psnr": self.best_psnr, "best_step": self.step},
        }
        ckpt.atomic_torch_save({"format": ckpt.FORMAT, "version": ckpt.VERSION, **state},
                               self.run_dir / "checkpoints" / "best.pt")

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

    def _forward_backward(self, lr_img: torch.Tensor, hr: torch.Tensor) -> tuple[
        list[str], list[torch.Tensor], torch.Tensor
    ]:
        """Losses and gradients of one step (no optimiser step yet).

        Returns (names, values, bad): values are 0-dim tensors to log, `bad` is a 0-dim bool
        tensor, true when a loss or gradient norm is not finite.
        """
        cfg = self.cfg
        hr_t = self.g.from_unit(hr)  # [-1, 1], the paper's HR range
        self.opt_g.zero_grad(set_to_none=True)
        names: list[str] = []
        values: list[torch.Tensor] = []
        checks: list[torch.Tensor] = []
        with self.autocast():
            sr = self.g_run(lr_img)
            g_loss, parts = self.content_run(sr, hr_t)
            if self.gan:
                assert self.d is not None
                self.d.requires_grad_(False)
                fm_weight = cfg.loss.feature_matching
                if fm_weight > 0:
                    fake_logits, fake_feats = discriminator_features(self.d, sr)
                    with torch.no_grad():
                        _, real_feats = discriminator_features(self.d, hr_t)
                    from srgan.losses import feature_matching_loss

                    fm = feature_matching_loss(fake_feats, real_feats)
                    g_loss = g_loss + fm_weight * fm
                    parts["fm"] = fm
                else:
                    assert self.d_for_g is not None
                    fake_logits = self.d_for_g(sr)
                adv = generator_adversarial_loss(fake_logits)
                g_loss = g_loss + cfg.loss.adversarial * adv
                parts["adv"] = adv
        g_loss.backward()
        names.append("loss")
        values.append(g_loss.detach())
        checks.append(g_loss.detach())
        for k, v in parts.items():
            names.append(k if k in ("adv", "fm") else f"content_{k}")
            values.append(v.detach())
        if "mse" not in parts:
            names.append("pixel_mse")
            values.append(torch.mean((sr.detach().float() - hr_t) ** 2))

        if self.gan:
            assert self.d is not None and self.d_run is not None and self.opt_d is not None
            self.d.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            from srgan.losses import discriminator_loss

            # Real and generated images in separate passes (own BatchNorm batch statistics),
            # each followed by its backward: the pattern DistributedDataParallel supports.
            with self.autocast():
                real_logits = self.d_run(hr_t)
                d_real = discriminator_loss(real_logits, None)
            d_real.backward()
            with self.autocast():
                fake_logits_d = self.d_run(sr.detach())
                d_fake = discriminator_loss(None, fake_logits_d)
            d_fake.backward()
            d_loss = (d_real + d_fake).detach()
            names += ["d_loss", "d_real", "d_fake"]
            values += [
                d_loss,
                torch.sigmoid(real_logits.detach().float()).mean(),
                torch.sigmoid(fake_logits_d.detach().float()).mean(),
            ]
            checks.append(d_loss)

        clip = cfg.train.grad_clip
        if clip > 0:
            gn = torch.nn.utils.clip_grad_norm_(self.g.parameters(), clip)
            names.append("grad_norm")
            values.append(gn.detach())
            checks.append(gn.detach())
            if self.d is not None:
                dn = torch.nn.utils.clip_grad_norm_(self.d.parameters(), clip)
                names.append("d_grad_norm")
                values.append(dn.detach())
                checks.append(dn.detach())
        bad = ~torch.isfinite(torch.stack([c.float() for c in checks])).all()
        return names, values, bad

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, logger: RunLogger) -> dict[str, float]:
        """Y-PSNR / SSIM (crop = scale) on whole images with the weights that would be exported
        (the EMA when enabled), in float32."""
        from srgan.metrics import psnr_y, ssim_y

        net = self.ema.model if self.ema is not None else self.g
        was_training = net.training
        net.eval()
        scale = self.cfg.model.scale
        psnrs, ssims = [], []
        val_dir = self.run_dir / "val"
        for i, item in enumerate(self.val):
            sr = net(item.lr.contiguous(memory_format=self.memory_format)).float()
            sr255 = net.to_unit(sr).clamp_(0, 1).mul_(255).round_()[0]
            hr255 = item.hr.float()
            psnrs.append(psnr_y(sr255, hr255, crop_border=scale))
            ssims.append(ssim_y(sr255, hr255, crop_border=scale))
            if i < self.cfg.log.val_images:
                strip = _strip(item, sr255, scale)
                _write_png(strip, val_dir / f"step_{self.step:09d}_{item.name}.png")
                logger.image(f"val/{item.name}", self.step, strip)
        net.train(was_training)
        finite = [p for p in psnrs if math.isfinite(p)]
        return {
            "psnr_y": sum(finite) / max(1, len(finite)),
            "ssim_y": sum(ssims) / len(ssims),
        }

    # ------------------------------------------------------------------ the loop

    def train_step(self, want_stop: float = 0.0) -> StepOutcome:
        """One complete step: batch, losses, gradients, one sync, optimiser steps (or a skip).

        `want_stop` (> 0: stop after this step) is max-reduced over ranks with the NaN flag, so
        all processes stop, or skip, together.
        """
        assert self.data is not None
        lr_now = self._set_lr()
        lr_img, hr = self.data.batch(self.cfg.train.batch_size)
        if self.step + 1 in self.hooks.nan_steps:
            lr_img = lr_img * float("nan")
        _copy_all(self._snapshot, self._buffers)
        names, values, bad = self._forward_backward(lr_img, hr)
        flags = torch.stack([bad.float(), bad.new_full((), want_stop, dtype=torch.float32)])
        all_reduce_max_(self.dist, flags)
        host = torch.cat([flags, torch.stack([v.float() for v in values])]).tolist()
        is_bad = host[0] > 0
        if is_bad:
            _copy_all(self._buffers, self._snapshot)  # undo BN statistics of the bad pass
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

    def _diverged(self, why: str, logger: RunLogger) -> None:
        last = ckpt.list_checkpoints(self.run_dir / "checkpoints")
        where = f"The last good checkpoint is {last[-1]}" if last else (
            "No checkpoint was written yet")
        logger.event("diverged", step=self.step, reason=why, total=self.bad_total)
        raise TrainingDiverged(
            f"training diverged: {why} (step {self.step}); stopping, no weights exported. "
            f"{where}. Try a lower train.lr, train.grad_clip > 0, or check the training images."
        )

    def fit(self, logger: RunLogger, time_limit: float | None = None) -> TrainResult:
        assert self.data is not None
        t, lg = self.cfg.train, self.cfg.log
        hooks = self.hooks
        patches_per_step = t.batch_size * self.dist.world_size
        stop = _StopFlag()
        stop.install()
        result = TrainResult(self.run_dir, self.step, finished=False, best_psnr=self.best_psnr)
        window: dict[str, float] = {}
        window_n = 0
        window_bad = 0
        window_t0 = time.monotonic()
        window_step0 = self.step
        smooth_loss: float | None = None
        t_start = time.monotonic()
        watch = DivergenceWatch(t.max_bad_steps)
        first_step, rate_t0 = self.step, 0.0
        warned_bad = False
        try:
            while self.step < t.steps:
                want_stop = 1.0 if stop.signum else 0.0
                if time_limit is not None and time.monotonic() - t_start > time_limit:
                    want_stop = 2.0
                out = self.train_step(want_stop)
                lr_now, stop_code = out.lr, out.stop_code
                if out.bad:
                    window_bad += 1
                    logger.event("nonfinite", step=self.step, run=self.bad_run,
                                 total=self.bad_total)
                    if not warned_bad:  # once: later ones are counted in log.jsonl
                        warned_bad = True
                        logger.message(f"warning: step {self.step}: non-finite loss or "
                                       "gradient, step skipped (log.jsonl counts them; many "
                                       "in a row, or most steps, stop the run)")
                diverged = watch.add(out.bad, self.bad_run)
                if diverged is None and (self.step >= t.steps or stop_code == 2.0):
                    diverged = watch.at_end()  # a short run that was mostly skipped
                if diverged is not None:
                    self._diverged(diverged, logger)
                if not out.bad:
                    for name, value in zip(out.names, out.values, strict=True):
                        window[name] = window.get(name, 0.0) + value
                    window_n += 1
                    smooth_loss = out.values[0] if smooth_loss is None else (
                        0.95 * smooth_loss + 0.05 * out.values[0])

                postfix = None
                if self.step % 10 == 0 or self.step == t.steps or stop_code:
                    elapsed = time.monotonic() - window_t0
                    rate = (self.step - window_step0) * patches_per_step / max(elapsed, 1e-9)
                    postfix = {
                        "loss": f"{smooth_loss:.4g}" if smooth_loss is not None else "nan",
                        "lr": f"{lr_now:.2g}", "patches/s": f"{rate:.0f}",
                    }
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
                    warning = eta_warning(self.run_dir, t.steps - self.step, per_step, left)
                    if warning:
                        logger.message(warning)
                        logger.event("eta", step=self.step, seconds_per_step=per_step,
                                     eta_s=per_step * (t.steps - self.step))

                if hooks.kill_at and self.step == hooks.kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                if hooks.signal_at and self.step == hooks.signal_at:
                    os.kill(os.getpid(), signal.SIGTERM)

                if self.step % lg.every == 0 or self.step == t.steps or stop_code:
                    now = time.monotonic()
                    self.train_seconds += now - window_t0
                    scalars = {k: v / max(1, window_n) for k, v in window.items()}
                    scalars.update({
                        "lr": lr_now,
                        "patches_per_s": (self.step - window_step0) * patches_per_step
                        / max(now - window_t0, 1e-9),
                        "skipped": window_bad,
                    })
                    logger.scalars(self.step, scalars)
                    result.history.append({"step": self.step, **scalars})
                    window, window_n, window_bad = {}, 0, 0
                    window_t0, window_step0 = now, self.step

                if self.val and (self.step % lg.val_every == 0 or self.step == t.steps):
                    metrics = self.validate(logger)
                    logger.scalars(self.step, metrics, prefix="val")
                    improved = self.best_psnr is None or metrics["psnr_y"] > self.best_psnr
                    if improved:
                        self.best_psnr, self.best_step = metrics["psnr_y"], self.step
                        self.save_best()
                    logger.message(
                        f"step {self.step}: val PSNR-Y {metrics['psnr_y']:.3f} dB, SSIM-Y "
                        f"{metrics['ssim_y']:.4f}" + (" (best)" if improved else
                                                       f" (best {self.best_psnr:.3f})")
                    )

                if stop_code:
                    reason = "time limit" if stop_code == 2.0 else signal.Signals(
                        stop.signum or signal.SIGTERM).name
                    path = self.save_checkpoint()
                    result.stopped = reason
                    logger.event("stopped", step=self.step, reason=reason,
                                 checkpoint=str(path) if path else None)
                    logger.message(f"stopped at step {self.step} ({reason}); checkpoint "
                                   f"{path}; continue with: srgan train --resume {self.run_dir}")
                    break
                if self.step % lg.ckpt_every == 0 or self.step == t.steps:
                    self.save_checkpoint()
        finally:
            stop.restore()
        result.step = self.step
        result.best_psnr = self.best_psnr
        result.finished = self.step >= t.steps and not result.stopped
        if hooks.dump_weights:
            folder = Path(hooks.dump_weights)
            folder.mkdir(parents=True, exist_ok=True)
            params = {f"g.{k}": v.detach().cpu() for k, v in self.g.named_parameters()}
            if self.d is not None:
                params.update({f"d.{k}": v.detach().cpu() for k, v in self.d.named_parameters()})
            torch.save(params, folder / f"rank{self.dist.rank}.pt")
        return result


def _as_tuple(x: Any) -> Any:
    """random.setstate needs tuples all the way down (a checkpoint may hold lists)."""
    if isinstance(x, list | tuple):
        return tuple(_as_tuple(v) for v in x)
    return x


def _strip(item: ValImage, sr255: torch.Tensor, scale: int) -> torch.Tensor:
    """LR (nearest-neighbour enlarged) | SR | HR, as a (3, H, 3W) uint8 tensor."""
    lr = item.lr[0].mul(255).round().clamp(0, 255)
    lr_big = lr.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return torch.cat([lr_big, sr255, item.hr.float()], dim=2).to(torch.uint8).cpu()


def _write_png(chw: torch.Tensor, path: Path) -> None:
    from srgan.imageio import from_array, write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(from_array(chw.permute(1, 2, 0).contiguous().numpy()), path, overwrite=True)
