"""Floats in [0, 1] <-> the integers an image file stores, written once for NumPy and once for
torch so that every path (files, the fast upscale path, the benchmark) rounds alike.

The rounding is MATLAB's `im2uint8`: round half up, clipped to [0, 1], NaN -> 0 (+inf -> the
maximum). Torch is imported only by `quantize_tensor`, so NumPy-only callers (`srgan.imageio`)
never pull it in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["quantize", "quantize_tensor", "to_float", "top_value"]


def top_value(bits: int) -> int:
    """The largest stored value: 255 for 8 bits, 65535 for 16."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    return 255 if bits == 8 else 65535


def to_float(arr: np.ndarray, bits: int) -> np.ndarray:
    """uint8/uint16 (or any integers up to the top value) -> float32 in [0, 1]."""
    return arr.astype(np.float32) / np.float32(top_value(bits))


def quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    """float [0, 1] -> uint8 (8 bits) or uint16 (16), round half up, clipped; NaN -> 0."""
    top = top_value(bits)
    x = np.nan_to_num(pixels.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    x = np.floor(np.clip(x, 0.0, 1.0) * np.float32(top) + np.float32(0.5))
    return x.astype(np.uint8 if bits == 8 else np.uint16)


def quantize_tensor(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """The same rounding as `quantize` for a tensor of any shape, on its device (so only the
    bytes cross to the host): uint8 for 8 bits, int32 for 16 (torch's uint16 lacks ops)."""
    import torch

    top = float(top_value(bits))
    q = torch.nan_to_num(x.float(), nan=0.0, posinf=1.0, neginf=0.0)
    q = q.clamp_(0.0, 1.0).mul_(top).add_(0.5).floor_()
    return q.to(torch.uint8 if bits == 8 else torch.int32)
