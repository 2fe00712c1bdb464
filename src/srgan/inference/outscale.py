"""`--outscale`: the one rule for an output's size, and the resize that reaches it.

The CLI (its disk-space check), the server (its pixel limit), video and `Upscaler` all size
an output by `output_size`, so what is checked before a job is what the job writes."""

from __future__ import annotations

import numpy as np
import torch


def check_outscale(outscale: float) -> None:
    if not 0 < outscale <= 64:
        raise ValueError(f"outscale must be in (0, 64], got {outscale}")


def output_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(height, width) of an image of `height` x `width` scaled by `factor`: rounded, at
    least one pixel."""
    return max(1, round(height * factor)), max(1, round(width * factor))


def resize_tensor(t: torch.Tensor, height: int, width: int, outscale: float) -> torch.Tensor:
    """(..., C, sH, sW) float -> (..., C, output_size(height, width, outscale)), MATLAB
    bicubic, clamped to [0, 1]."""
    from srgan.resize import imresize

    return imresize(t, size=output_size(height, width, outscale)).clamp_(0, 1)


def resize_pixels(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxWxC float image -> `size` (height, width), MATLAB bicubic, clamped to [0, 1]."""
    from srgan.resize import imresize

    t = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
    return imresize(t, size=size).clamp_(0, 1).permute(1, 2, 0).contiguous().numpy()


def resize_to(pixels: np.ndarray, height: int, width: int, outscale: float) -> np.ndarray:
    """Resize an upscaled HxWxC float image to round(outscale * input size), MATLAB bicubic."""
    check_outscale(outscale)
    return resize_pixels(pixels, output_size(height, width, outscale))
