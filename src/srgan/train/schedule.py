"""Learning-rate schedules as pure functions of the step: nothing to save in checkpoints, and
a resumed run gets exactly the lr the uninterrupted one would have had."""

from __future__ import annotations

import math

from srgan.train.config import TrainSection


def lr_at(cfg: TrainSection, step: int, base_lr: float | None = None) -> float:
    """The lr for the update that follows `step` completed steps (0-based).

    Linear warmup over `warmup_steps` (from base/warmup to base), then:
    constant; multistep (times `gamma` at each of `milestones`); or cosine from base down to
    `min_lr` at `steps`.
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
    return base
