"""Inference: run a generator over images of any size, mode and bit depth.

* `upscaler`: `Upscaler`, the public face (`from_pretrained`, one `upscale` for PIL, NumPy,
  tensors, ImageData and QuantizedImage), and `ImageUpscaler`, what every backend shares;
* `_engine`: the private tile engine (tiles batched on the device, precision, the memory
  budget); it never imports the face;
* `tiling`: `Tile` and `plan_tiles`;
* `batches`: what a batch of tiles goes through around the network (TTA, rounding, buffers);
* `planes`: alpha and grey (`pin_alpha`, `fill_transparent`);
* `outscale`: the output size of `--outscale`, and the resize to it.

The folder pipeline (`overlapped`, `io_depth`) lives beside `srgan upscale`, in
`srgan.commands.pipeline`.
"""

from __future__ import annotations

from srgan.inference.batches import DEFAULT_SPILL_BYTES, NonFiniteOutputError, output_buffer
from srgan.inference.outscale import output_size, resize_to
from srgan.inference.planes import fill_transparent, pin_alpha
from srgan.inference.tiling import Tile, plan_tiles
from srgan.inference.upscaler import (
    ARRAY_DTYPES,
    BACKENDS,
    CPU_BUDGET_MB,
    DEFAULT_TILE_PAD,
    MIN_SIDE,
    SMALL_MARGIN,
    ImageUpscaler,
    Upscaler,
    check_pixels,
)

__all__ = [
    "ARRAY_DTYPES", "BACKENDS", "CPU_BUDGET_MB", "DEFAULT_SPILL_BYTES", "DEFAULT_TILE_PAD",
    "MIN_SIDE", "SMALL_MARGIN", "ImageUpscaler", "NonFiniteOutputError", "Tile", "Upscaler",
    "check_pixels", "fill_transparent", "output_buffer", "output_size", "pin_alpha",
    "plan_tiles", "resize_to",
]
