"""Which arithmetic inference runs in: `--precision auto|fp32|fp16|bf16` -> a torch dtype.

On the CPU, bf16 only pays where the hardware multiplies it (AVX-512 BF16 or AMX, per
`srgan.cpu.native_bf16`): there the fast path's bf16 mix is 2-3x its fp32 speed and within
1/255 of it (docs/performance.md). Elsewhere oneDNN emulates bf16, slower than fp32 and less
exact, so `auto` keeps fp32 and an explicit fp16/bf16 falls back to it with a warning.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a dtype is picked: the CLI's options need
    import torch  # PRECISIONS alone, and `srgan upscale --help` should not load torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for `precision` on `device`. fp32 is always exact; auto means fp16
    on GPUs, bf16 on CPUs with native bf16, fp32 on other CPUs."""
    import torch

    from srgan import cpu

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return torch.float32
    if device.type == "cpu":
        native, why = cpu.native_bf16()
        if precision in ("auto", "bf16") and native:
            return torch.bfloat16
        if precision != "auto":
            reason = why if precision == "bf16" else "no fast fp16 convolutions on the CPU"
            warnings.warn(f"{precision} on the CPU is slower and less exact than fp32 here "
                          f"({reason}); using fp32", stacklevel=3)
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16  # auto and fp16 on CUDA / MPS


def image_dtype(precision: str, dtype: torch.dtype, bits: int) -> torch.dtype:
    """The dtype an image of `bits` per channel runs in, given `pick_dtype`'s `dtype`: the
    same, except that `auto` runs 16-bit images in fp32 where it picked bf16. bf16's 8-bit
    mantissa errs by up to 1/255, 257 levels of 65535: a 16-bit image would lose its depth.
    An explicit bf16 is honoured."""
    import torch

    if precision == "auto" and bits > 8 and dtype == torch.bfloat16:
        return torch.float32
    return dtype
