"""Hooks into `Trainer.fit`, for code that watches or steers a run from outside the loop
(the test suite injects its faults through them: signals, NaN batches, weight dumps). They
see the training state (`TrainState`: networks, optimisers, EMA, counters), not the loop."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from srgan.train.state import TrainResult, TrainState


class TrainCallback:
    """Override what you need; every hook here does nothing. Steps are counted from 1."""

    def on_batch(self, state: TrainState, step: int, lr_img: torch.Tensor,
                 hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch that step `step` trains on, before the forward pass (may replace it)."""
        return lr_img, hr

    def on_step_end(self, state: TrainState) -> None:
        """After step `state.step` and its progress line, before its log line, validation
        and checkpoint."""

    def on_fit_end(self, state: TrainState, result: TrainResult) -> None:
        """When `fit` returns normally (finished, stopped by a signal or the time limit)."""


def batch_through(callbacks: Sequence[TrainCallback], state: TrainState, step: int,
                  lr_img: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for cb in callbacks:
        lr_img, hr = cb.on_batch(state, step, lr_img, hr)
    return lr_img, hr
