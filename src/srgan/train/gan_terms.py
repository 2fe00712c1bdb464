"""The generator's stage-2 terms, beside its content loss: adversarial, discriminator feature
matching, the LDL artefact map and the flat-region MSE. Kept apart from the loop so each
option is read in one place."""

from __future__ import annotations

import torch
from torch import nn

from srgan.losses import (
    artifact_loss,
    discriminator_features,
    feature_matching_loss,
    flat_mse_loss,
    generator_adversarial_loss,
)
from srgan.train.config import LossSection
from srgan.train.schedule import adversarial_ramp


def generator_gan_terms(
    loss: LossSection, step: int, d: nn.Module, d_for_g: nn.Module,
    lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, ema: nn.Module | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum and unweighted parts. `d` is the bare discriminator (its features for
    feature matching), `d_for_g` the one to call for logits (DDP-wrapped or compiled); `ema`
    is the EMA generator, run on `lr` only when the artefact term needs it (the config
    requires train.ema > 0 for that term)."""
    ramp = adversarial_ramp(loss.adversarial_warmup, step)
    parts: dict[str, torch.Tensor] = {}
    total = sr.new_zeros((), dtype=torch.float32)
    fm_weight = loss.feature_matching * ramp
    if fm_weight > 0:
        fake_logits, fake_feats = discriminator_features(d, sr)
        with torch.no_grad():
            _, real_feats = discriminator_features(d, hr)
        parts["fm"] = feature_matching_loss(fake_feats, real_feats)
        total = total + fm_weight * parts["fm"]
    else:
        fake_logits = d_for_g(sr)
    parts["adv"] = generator_adversarial_loss(fake_logits)
    total = total + loss.adversarial * ramp * parts["adv"]
    if loss.artifacts > 0:
        assert ema is not None
        with torch.no_grad():
            sr_ema = ema(lr)
        parts["artifacts"] = artifact_loss(hr, sr, sr_ema)
        total = total + loss.artifacts * parts["artifacts"]
    if loss.flat_mse > 0:
        parts["flat"] = flat_mse_loss(hr, sr)
        total = total + loss.flat_mse * parts["flat"]
    return total, parts
