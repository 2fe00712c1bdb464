"""The two training stages as classes, after BasicSR's SRModel and SRGANModel: the loop calls
`stage.step(lr, hr)` and never asks which stage it runs.

`ContentStage` (train.stage = "srresnet", the paper's stage 1): the generator alone against
its content loss (paper: pixel MSE).
`AdversarialStage` (train.stage = "srgan", stage 2) subclasses it and overrides the parts
of its step: the generator's content loss plus the GAN terms against the current
discriminator (whose weights get no gradient), then the discriminator on the same batch's
real and generated images. It also says what stage 2 adds before anything is built: the
discriminator, its memory, the size keys and the model card's recipe.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn

from srgan.losses import (
    ContentLoss,
    artifact_loss,
    discriminator_features,
    discriminator_loss,
    feature_matching_loss,
    flat_mse_loss,
    generator_adversarial_loss,
    highpass,
    unsharp_mask,
)
from srgan.nets import Discriminator
from srgan.train.config import Config
from srgan.train.schedule import adversarial_ramp, lr_at
from srgan.train.state import TrainState

GAN_TERMS = ("adv", "fm", "artifacts", "flat")  # logged under their own names, not content_*


@dataclass
class StepLog:
    """What one step's passes report: logged 0-dim tensors, and those that must be finite."""

    names: list[str] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    checks: list[torch.Tensor] = field(default_factory=list)

    def add(self, name: str, value: torch.Tensor, check: bool = False) -> None:
        self.names.append(name)
        self.values.append(value)
        if check:
            self.checks.append(value)

    def bad(self) -> torch.Tensor:
        """A 0-dim bool tensor, true when a checked loss or gradient norm is not finite."""
        return ~torch.isfinite(torch.stack([c.float() for c in self.checks])).all()


def adam(params, lr: float, cfg: Config, device: torch.device) -> torch.optim.Adam:
    t = cfg.train
    return torch.optim.Adam(params, lr=lr, betas=(t.betas[0], t.betas[1]),
                            weight_decay=t.weight_decay, fused=device.type == "cuda")


class ContentStage:
    """Stage 1: the generator alone, against its content loss."""

    def __init__(self, cfg: Config, state: TrainState, content: ContentLoss, amp: bool,
                 device: torch.device) -> None:
        self.cfg, self.state, self.content, self.amp, self.device = (
            cfg, state, content, amp, device)
        # what the step calls: the bare modules, or their DDP / compiled wrappers (`wrap`)
        self.g_run: nn.Module = state.g
        self.content_run: nn.Module = content

    # ------------------------------------------------------------- before anything is built

    @staticmethod
    def new_discriminator(cfg: Config) -> Discriminator | None:
        """The discriminator this stage trains (on the current default device)."""
        return None

    @classmethod
    def discriminator(cls, cfg: Config, device: torch.device, memory_format: torch.memory_format
                      ) -> tuple[Discriminator | None, torch.optim.Adam | None]:
        """The discriminator and its optimiser, on `device` (stage 1: none)."""
        return None, None

    @staticmethod
    def sample_bytes(cfg: Config, act: int) -> int:
        """Activation bytes a training sample adds beyond the generator's (`act` a value)."""
        return 0

    @staticmethod
    def size_keys(cfg: Config) -> str:
        """The keys beyond the generator's that make the networks big, for an error message."""
        return ""

    @staticmethod
    def recipe(cfg: Config) -> str:
        """How the weights were trained, for the model card."""
        return f"SRResNet stage 1: content {_terms(cfg)}"

    # ------------------------------------------------------------- around the step

    def wrap(self, ddp: bool, compile: bool) -> None:
        """DistributedDataParallel under torchrun, then torch.compile if asked."""
        if ddp:
            self.g_run = _ddp(self.state.g, self.device)
        if compile:
            self.g_run = torch.compile(self.g_run)
            if self.content.uses_vgg:
                self.content_run = torch.compile(self.content)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def set_lr(self) -> float:
        """The schedule's learning rate at this step, into the optimisers; returns it."""
        lr = lr_at(self.cfg.train, self.state.step)
        for group in self.state.opt_g.param_groups:
            group["lr"] = lr
        return lr

    # ------------------------------------------------------------- the step

    def step(self, lr_img: torch.Tensor, hr: torch.Tensor) -> StepLog:
        """Losses and gradients of one step (no optimiser step yet): the generator's, then
        the discriminator's on the same batch, then the clipping."""
        hr_t = self.state.g.from_unit(hr)  # [-1, 1], the paper's HR range
        out = StepLog()
        sr = self.generator_backward(lr_img, hr_t, out)
        self.discriminator_backward(hr_t, sr, out)
        self.clip_gradients(out)
        return out

    def generator_loss(self, lr_img: torch.Tensor, sr: torch.Tensor, hr_t: torch.Tensor,
                       pixel_target: torch.Tensor | None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's weighted loss and its unweighted parts: here the content loss."""
        return self.content_run(sr, hr_t, pixel_target)

    def generator_backward(self, lr_img: torch.Tensor, hr_t: torch.Tensor,
                           out: StepLog) -> torch.Tensor:
        """The generator's loss and its backward; returns the generated batch."""
        g = self.state.g
        self.state.opt_g.zero_grad(set_to_none=True)
        pixel_target = None
        if self.cfg.loss.usm_pixel_targets:  # sharper targets for the pixel terms only
            pixel_target = g.from_unit(unsharp_mask(g.to_unit(hr_t)))
        with self.autocast():
            sr = self.g_run(lr_img)
            g_loss, parts = self.generator_loss(lr_img, sr, hr_t, pixel_target)
        g_loss.backward()
        out.add("loss", g_loss.detach(), check=True)
        for k, v in parts.items():
            out.add(k if k in GAN_TERMS else f"content_{k}", v.detach())
        if "mse" not in parts:
            out.add("pixel_mse", torch.mean((sr.detach().float() - hr_t) ** 2))
        return sr

    def discriminator_backward(self, hr_t: torch.Tensor, sr: torch.Tensor,
                               out: StepLog) -> None:
        """The discriminator's loss and backward (stage 1 trains none)."""

    def clip_gradients(self, out: StepLog) -> None:
        """train.grad_clip > 0: clip the generator's gradient norm (logged)."""
        _clip(self.state.g, self.cfg.train.grad_clip, "grad_norm", out)


class AdversarialStage(ContentStage):
    """Stage 2: generator and discriminator updated alternately every step (G first, against
    the current D; then D on the same batch's real and generated images)."""

    def __init__(self, cfg: Config, state: TrainState, content: ContentLoss, amp: bool,
                 device: torch.device) -> None:
        super().__init__(cfg, state, content, amp, device)
        assert state.d is not None and state.opt_d is not None
        self.d, self.opt_d = state.d, state.opt_d
        self.d_run: nn.Module = state.d  # D's own step
        self.d_for_g: nn.Module = state.d  # D inside the generator's step

    @staticmethod
    def new_discriminator(cfg: Config) -> Discriminator | None:
        return Discriminator(base_channels=cfg.discriminator.base_channels,
                             antialias=cfg.discriminator.antialias)

    @classmethod
    def discriminator(cls, cfg: Config, device: torch.device, memory_format: torch.memory_format
                      ) -> tuple[Discriminator | None, torch.optim.Adam | None]:
        d = cls.new_discriminator(cfg)
        assert d is not None
        d = d.to(device).to(memory_format=memory_format)
        return d, adam(d.parameters(), cfg.train.d_lr or cfg.train.lr, cfg, device)

    @staticmethod
    def sample_bytes(cfg: Config, act: int) -> int:
        return act * 2 * cfg.discriminator.base_channels * cfg.data.crop * cfg.data.crop

    @staticmethod
    def size_keys(cfg: Config) -> str:
        return f", discriminator.base_channels={cfg.discriminator.base_channels}"

    @staticmethod
    def recipe(cfg: Config) -> str:
        lo = cfg.loss
        recipe = f"SRGAN stage 2: content {_terms(cfg)}, adversarial {lo.adversarial:g}"
        if lo.feature_matching:
            recipe += f", D feature matching {lo.feature_matching:g}"
        if lo.artifacts:
            recipe += f", LDL artefact map {lo.artifacts:g}"
        if lo.flat_mse:
            recipe += f", flat-region MSE {lo.flat_mse:g}"
        if lo.usm_pixel_targets:
            recipe += ", pixel terms against unsharp-masked HR"
        if cfg.discriminator.input == "highpass":
            recipe += (", discriminator on high frequencies (image minus its Gaussian blur, "
                       f"sigma {cfg.discriminator.highpass_sigma:g})")
        if cfg.uses_vgg():
            recipe += f", VGG feature scale {lo.vgg_scale:.6g}"
        return recipe

    def wrap(self, ddp: bool, compile: bool) -> None:
        super().wrap(ddp, compile)
        if ddp:
            self.d_run = _ddp(self.d, self.device)
        if compile:
            self.d_run = torch.compile(self.d_run)
            self.d_for_g = torch.compile(self.d)

    def set_lr(self) -> float:
        lr = super().set_lr()
        t = self.cfg.train
        d_lr = lr_at(t, self.state.step, base_lr=t.d_lr or t.lr)
        for group in self.opt_d.param_groups:
            group["lr"] = d_lr
        return lr

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        """What D judges of an image, real or generated alike: the image itself, or with
        discriminator.input = "highpass" only its detail (x - blur(x), in float32), so the
        adversarial loss cannot reward colour shifts or broad halos, only texture."""
        dc = self.cfg.discriminator
        if dc.input == "image":
            return x
        exact = torch.autocast(self.device.type, enabled=False) if self.amp else (
            contextlib.nullcontext())
        with exact:
            return highpass(x.float(), dc.highpass_sigma)

    def generator_loss(self, lr_img: torch.Tensor, sr: torch.Tensor, hr_t: torch.Tensor,
                       pixel_target: torch.Tensor | None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Content loss plus the GAN terms, against a D whose weights get no gradient."""
        loss, parts = super().generator_loss(lr_img, sr, hr_t, pixel_target)
        self.d.requires_grad_(False)
        gan_loss, gan_parts = self.gan_terms(lr_img, sr, hr_t)
        parts.update(gan_parts)
        return loss + gan_loss, parts

    def gan_terms(self, lr_img: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum and unweighted parts of adversarial, D feature matching (on the bare
        D's features), the LDL artefact map (the EMA generator on `lr_img`; the config
        requires train.ema > 0 for it) and the flat-region MSE."""
        loss, state = self.cfg.loss, self.state
        ramp = adversarial_ramp(loss.adversarial_warmup, state.step)
        parts: dict[str, torch.Tensor] = {}
        total = sr.new_zeros((), dtype=torch.float32)
        fm_weight = loss.feature_matching * ramp
        if fm_weight > 0:
            fake_logits, fake_feats = discriminator_features(self.d, self.d_input(sr))
            with torch.no_grad():
                _, real_feats = discriminator_features(self.d, self.d_input(hr))
            parts["fm"] = feature_matching_loss(fake_feats, real_feats)
            total = total + fm_weight * parts["fm"]
        else:
            fake_logits = self.d_for_g(self.d_input(sr))
        parts["adv"] = generator_adversarial_loss(fake_logits)
        total = total + loss.adversarial * ramp * parts["adv"]
        if loss.artifacts > 0:
            assert state.ema is not None
            with torch.no_grad():
                sr_ema = state.ema.model(lr_img)
            parts["artifacts"] = artifact_loss(hr, sr, sr_ema)
            total = total + loss.artifacts * parts["artifacts"]
        if loss.flat_mse > 0:
            parts["flat"] = flat_mse_loss(hr, sr)
            total = total + loss.flat_mse * parts["flat"]
        return total, parts

    def discriminator_backward(self, hr_t: torch.Tensor, sr: torch.Tensor,
                               out: StepLog) -> None:
        """The discriminator's loss on real and generated images, and its backward."""
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        # Real and generated images in separate passes (own BatchNorm batch statistics),
        # each followed by its backward: the pattern DistributedDataParallel supports.
        with self.autocast():
            real_logits = self.d_run(self.d_input(hr_t))
            d_real = discriminator_loss(real_logits, None)
        d_real.backward()
        with self.autocast():
            fake_logits = self.d_run(self.d_input(sr.detach()))
            d_fake = discriminator_loss(None, fake_logits)
        d_fake.backward()
        out.add("d_loss", (d_real + d_fake).detach(), check=True)
        out.add("d_real", torch.sigmoid(real_logits.detach().float()).mean())
        out.add("d_fake", torch.sigmoid(fake_logits.detach().float()).mean())

    def clip_gradients(self, out: StepLog) -> None:
        super().clip_gradients(out)
        _clip(self.d, self.cfg.train.grad_clip, "d_grad_norm", out)


STAGES: dict[str, type[ContentStage]] = {"srresnet": ContentStage, "srgan": AdversarialStage}


def stage_class(cfg: Config) -> type[ContentStage]:
    """The class of train.stage (the config has checked the name)."""
    return STAGES[cfg.train.stage]


def _terms(cfg: Config) -> str:
    return " + ".join(f"{w:g}*{k}" for k, w in cfg.loss.content.items())


def _ddp(net: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(net, device_ids=[device.index] if device.type == "cuda" else None)


def _clip(net: nn.Module, clip: float, name: str, out: StepLog) -> None:
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        out.add(name, norm.detach(), check=True)
