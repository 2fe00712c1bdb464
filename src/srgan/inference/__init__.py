"""Inference: run a generator over images of any size, mode and bit depth.

* `upscaler`: `Upscaler`, the tensor and quantised pixel paths (tiles batched on the device);
* `tiling`: `Tile` and `plan_tiles`;
* `batches`: what a batch of tiles goes through around the network (TTA, rounding, buffers);
* `planes`: alpha and grey (`pin_alpha`, `fill_transparent`);
* `outscale`: the output size of `--outscale`, and the resize to it;
* `adapters`: NumPy, ImageData, PIL and tensors in and out, with their dtype checks.

The folder pipeline (`overlapped`, `io_depth`) lives beside `srgan upscale`, in
`srgan.commands.pipeline`.
"""

from __future__ import annotations

from srgan.device import pick_device
from srgan.inference.adapters import ARRAY_DTYPES, check_pixels
from srgan.inference.batches import (
    DEFAULT_SPILL_BYTES,
    NonFiniteOutputError,
    output_buffer,
    quantize,
)
from srgan.inference.outscale import output_size, resize_to
from srgan.inference.planes import fill_transparent, pin_alpha
from srgan.inference.tiling import Tile, plan_tiles
from srgan.inference.upscaler import (
    BACKENDS,
    CPU_BUDGET_MB,
    DEFAULT_TILE_PAD,
    MIN_SIDE,
    SMALL_MARGIN,
    Upscaler,
)
from srgan.precision import PRECISIONS, pick_dtype

__all__ = [
    "ARRAY_DTYPES", "BACKENDS", "CPU_BUDGET_MB", "DEFAULT_SPILL_BYTES", "DEFAULT_TILE_PAD",
    "MIN_SIDE", "PRECISIONS", "SMALL_MARGIN", "NonFiniteOutputError", "Tile", "Upscaler",
    "check_pixels", "fill_transparent", "output_buffer", "output_size", "pick_device",
    "pick_dtype", "pin_alpha", "plan_tiles", "quantize", "resize_to",
]
