"""What the CPU can do natively, so `auto` precision choices never guess.

bf16 is only worth using where the hardware multiplies it (AVX-512 BF16 or AMX); elsewhere
oneDNN emulates it and it is slower than fp32 while losing precision.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def capability() -> str:
    """PyTorch's name for the widest vector ISA its kernels use here (e.g. AVX2, AVX512)."""
    return torch.backends.cpu.get_cpu_capability()


def native_bf16(flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """(whether bf16 arithmetic is native here, a short reason to print)."""
    flags = cpu_flags() if flags is None else flags
    found = [f for f in NATIVE_BF16_FLAGS if f in flags]
    if found:
        return True, f"CPU has {' and '.join(found)}"
    if not flags:
        return False, "CPU flags unknown"
    return False, f"CPU has no native bf16 ({capability()} only)"
