"""Hooks into `Trainer.fit`, for code that watches or steers a run from outside the loop
(the test suite injects its faults through them: signals, NaN batches, weight dumps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from srgan.train.loop import Trainer, TrainResult


class TrainCallback:
    """Override what you need; every hook here does nothing. Steps are counted from 1."""

    def on_batch(self, trainer: Trainer, step: int, lr_img: torch.Tensor,
                 hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch that step `step` trains on, before the forward pass (may replace it)."""
        return lr_img, hr

    def on_step_end(self, trainer: Trainer) -> None:
        """After step `trainer.step` and its progress line, before its log line, validation
        and checkpoint."""

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        """When `fit` returns normally (finished, stopped by a signal or the time limit)."""


def batch_through(callbacks: Sequence[TrainCallback], trainer: Trainer, step: int,
                  lr_img: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for cb in callbacks:
        lr_img, hr = cb.on_batch(trainer, step, lr_img, hr)
    return lr_img, hr
