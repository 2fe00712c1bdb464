"""Learning-rate schedules as pure functions of the step: nothing to save in checkpoints, and
a resumed run gets exactly the lr the uninterrupted one would have had."""

from __future__ import annotations

import math

from srgan.train.config import TrainSection


def lr_at(cfg: TrainSection, step: int, base_lr: float | None = None) -> float:
    """The lr for the update that follows `step` completed steps (0-based).

    Linear warmup over `warmup_steps` (from base/warmup to base), then:
    constant; multistep (times `gamma` at each of `milestones`); cosine from base down to
    `min_lr` at `steps`; or cosine_restarts: cosine segments of `period` steps (each
    `period_mult` times the last), each starting `restart_decay` times lower than the last.
    Restarts suit an open-ended, time-limited campaign: every segment ends at a low lr, so the
    weights are worth exporting at each segment's end, and the run can go on for as long as
    there is time, without a total step count fixed in advance.
    """
    base = cfg.lr if base_lr is None else base_lr
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return base * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "multistep":
        return base * cfg.gamma ** sum(1 for m in cfg.milestones if step >= m)
    if cfg.schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        low = min(cfg.min_lr, base)
        return low + (base - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "cosine_restarts":
        segment, start, length = _segment_of(step - cfg.warmup_steps, cfg.period, cfg.period_mult)
        peak = base * cfg.restart_decay ** segment
        low = min(cfg.min_lr, peak)
        progress = (step - cfg.warmup_steps - start) / length
        return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base


def _segment_of(step: int, period: int, mult: float) -> tuple[int, int, int]:
    """(segment index, its first step, its length) of the restart segment holding `step`."""
    index, start, length = 0, 0, max(1, period)
    while step >= start + length:
        start += length
        index += 1
        length = max(1, round(length * mult))
    return index, start, length


def adversarial_ramp(warmup_steps: int, step: int) -> float:
    """Factor on the adversarial (and feature-matching) weight for the update after `step`
    completed steps: rises linearly from ~0 to 1 over `warmup_steps`, so a fresh discriminator
    learns first and its early, noisy gradients barely reach the generator."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)
