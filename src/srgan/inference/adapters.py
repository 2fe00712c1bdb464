"""Thin adapters from what callers hold (NumPy arrays, ImageData, PIL images, tensors) to
`Upscaler`'s two pixel paths, with the checks that keep wrong values from the network: an
int32 array read as if it were in [0, 1], or floats outside it, would come out as garbage
rather than an error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from srgan.imageio import ImageData, from_array, from_pil, to_array, to_pil
from srgan.inference.outscale import resize_tensor, resize_to
from srgan.inference.planes import pin_alpha

if TYPE_CHECKING:
    from srgan.inference.upscaler import Upscaler

ARRAY_DTYPES = "uint8, uint16, or float (float32, float64) in [0, 1]"


def check_pixels(pixels: np.ndarray) -> int:
    """Refuse arrays the network cannot read right; return their bit depth (8 for floats,
    as `imageio.from_array` counts them)."""
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"expected a NumPy array, got {type(pixels).__name__}")
    if pixels.dtype == np.uint8:
        return 8
    if pixels.dtype == np.uint16:
        return 16
    if pixels.dtype.kind != "f":
        raise TypeError(f"cannot upscale an array of {pixels.dtype}: use {ARRAY_DTYPES} "
                        "(imageio.from_array converts)")
    if pixels.size:
        lo, hi = float(pixels.min()), float(pixels.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("float pixels contain NaN or infinity")
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"float pixels must lie in [0, 1], got [{lo:g}, {hi:g}]")
    return 8


def upscale_array(up: Upscaler, pixels: np.ndarray, tta: bool = False,
                  progress: Any | None = None) -> np.ndarray:
    """HxW or HxWxC (C 1..4) uint8 / uint16 / float in [0, 1] -> (sH)x(sW)xC float32 in
    [0, 1]."""
    bits = check_pixels(pixels)
    return up.upscale_pixels(pixels, tta, progress, bits=bits)


def upscale_image(up: Upscaler, data: ImageData, outscale: float | None = None,
                  tta: bool = False, progress: Any | None = None) -> ImageData:
    """Upscale decoded image data, keeping its mode, bit depth, ICC profile and EXIF."""
    out = up.upscale_pixels(data.pixels, tta, progress, bits=data.bit_depth)
    if outscale is not None and outscale != up.scale:
        out = resize_to(out, data.height, data.width, outscale)
        if data.has_alpha:  # the resize rings again around transparent areas
            pin_alpha(out[:, :, -1], data.pixels[:, :, -1])
    return data.with_pixels(out)


def upscale_tensor(up: Upscaler, image: torch.Tensor, outscale: float | None,
                   tta: bool) -> torch.Tensor:
    if not image.is_floating_point():
        raise TypeError("tensors must be float in [0, 1]")
    y = up.upscale_tensor(image, tta)
    if outscale is not None and outscale != up.scale:
        h, w = image.shape[-2:]
        y = resize_tensor(y, h, w, outscale)
    return y.to(image.device)


def upscale_any(up: Upscaler, image: Any, outscale: float | None = None,
                tta: bool = False) -> Any:
    """Upscale a PIL image, a NumPy array, a tensor or ImageData; returns the same kind."""
    if isinstance(image, ImageData):
        return upscale_image(up, image, outscale, tta)
    if isinstance(image, torch.Tensor):
        return upscale_tensor(up, image, outscale, tta)
    if isinstance(image, np.ndarray):
        out = upscale_image(up, from_array(image), outscale, tta)
        arr = to_array(out, image.dtype)
        return arr[..., 0] if image.ndim == 2 else arr
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return to_pil(upscale_image(up, from_pil(image), outscale, tta))
    raise TypeError(f"cannot upscale a {type(image).__name__}")


__all__ = ["ARRAY_DTYPES", "check_pixels", "upscale_any", "upscale_array", "upscale_image",
           "upscale_tensor"]
