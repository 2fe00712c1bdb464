"""Exponential moving average of the generator's weights (not in the paper; usually worth a
few hundredths of a dB for free). BatchNorm running statistics are copied, not averaged."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())

    def effective_decay(self, step: int) -> float:
        """Warmed up as (1 + step) / (10 + step), so early weights do not linger for long."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """One fused lerp over all parameters and one copy over all buffers (few kernels)."""
        src_params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(self._params, src_params, 1.0 - self.effective_decay(step))
        src_buffers = list(model.buffers())
        if self._buffers:
            torch._foreach_copy_(self._buffers, src_buffers)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
