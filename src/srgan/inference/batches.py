"""What a batch of tiles goes through around the network: the x8 self-ensemble, the
post-processing into floats or integers on the device, the host buffer the tiles land in
(memory-mapped for huge outputs), and the record of a batch in flight."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srgan.quantize import quantize_tensor

# Quantised outputs larger than this live in a memory-mapped temporary file, not in RAM.
DEFAULT_SPILL_BYTES = 2 << 30


def tta_forward(fn, x: torch.Tensor) -> torch.Tensor:
    """x8 self-ensemble: every flip/rotation of the input, undone on the output, averaged."""
    total = None
    for rot in range(4):
        for flip in (False, True):
            t = torch.rot90(x, rot, (2, 3))
            if flip:
                t = torch.flip(t, (3,))
            y = fn(t)
            if flip:
                y = torch.flip(y, (3,))
            y = torch.rot90(y, -rot, (2, 3)).float()
            total = y if total is None else total + y
    return total / 8


def post_float(y: torch.Tensor) -> torch.Tensor:
    """Device output (N,3,h,w) -> clamped float (N,h,w,3)."""
    return y.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def quantize_batch(y: torch.Tensor, bits: int) -> torch.Tensor:
    """(N,C,h,w) float in [0,1] -> (N,h,w,C) uint8 (8 bits) or int32 (16 bits): the rounding
    of `srgan.imageio` (`srgan.quantize`), on the device, so only the bytes of the result
    cross to the host."""
    return quantize_tensor(y, bits).permute(0, 2, 3, 1).contiguous()


@dataclass
class Pending:
    """A batch in flight: its device input (kept for an fp32 redo), the host tensor its result
    is copied into, the event that says the copy is done, whether it was finite, and the
    precision it ran in."""

    x: torch.Tensor
    host: torch.Tensor
    done: Any
    finite: torch.Tensor | None
    half: bool = False  # run in half precision: a non-finite result is redone in fp32


def output_buffer(shape: tuple[int, ...], dtype: Any, spill_bytes: int | None = DEFAULT_SPILL_BYTES,
                  spill_dir: str | Path | None = None) -> np.ndarray:
    """An uninitialised array; above `spill_bytes` a np.memmap on an already-unlinked
    temporary file in `spill_dir`, so the OS can page a huge output out instead of failing."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if spill_bytes is None or nbytes <= spill_bytes:
        return np.empty(shape, dtype)
    with tempfile.TemporaryFile(prefix=".srgan-", suffix=".tmp", dir=spill_dir) as fh:
        return np.memmap(fh, dtype=dtype, mode="w+", shape=shape)  # the map keeps the file


class NonFiniteOutputError(ValueError):
    """The network gave no usable pixel (NaN / infinity everywhere): the model is broken."""
