"""srgan.cpu: the native-bf16 verdict that `auto` precision choices rest on."""

from __future__ import annotations

import torch

from srgan import cpu
from srgan.train.build import choose_amp

AVX2_ONLY = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512_NO_BF16 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}


def test_native_bf16_needs_avx512_bf16_or_amx():
    assert cpu.native_bf16(AVX2_ONLY)[0] is False
    assert cpu.native_bf16(AVX512_NO_BF16)[0] is False  # AVX-512 alone emulates bf16
    ok, why = cpu.native_bf16(AVX512_NO_BF16 | {"avx512_bf16"})
    assert ok and "avx512_bf16" in why
    assert cpu.native_bf16(AVX2_ONLY | {"amx_bf16", "amx_tile"})[0] is True
    assert cpu.native_bf16(frozenset()) == (False, "CPU flags unknown")


def test_cpu_flags_read_from_proc():
    cpu.cpu_flags.cache_clear()
    try:
        flags = cpu.cpu_flags()
        assert isinstance(flags, frozenset)
        if flags:  # Linux: the flags line of /proc/cpuinfo, split into words
            assert "fpu" in flags or "sse2" in flags
    finally:
        cpu.cpu_flags.cache_clear()


def test_train_amp_auto_follows_the_cpu(monkeypatch):
    dev = torch.device("cpu")
    monkeypatch.setattr(cpu, "cpu_flags", lambda: AVX2_ONLY)
    amp, why = choose_amp("auto", dev)
    assert amp is False and "no native bf16" in why
    monkeypatch.setattr(cpu, "cpu_flags", lambda: AVX512_NO_BF16 | {"avx512_bf16"})
    amp, why = choose_amp("auto", dev)
    assert amp is True and "avx512_bf16" in why
    # explicit settings win whatever the CPU
    assert choose_amp("none", dev)[0] is False
    monkeypatch.setattr(cpu, "cpu_flags", lambda: AVX2_ONLY)
    assert choose_amp("bf16", dev)[0] is True
    assert choose_amp("auto", torch.device("cuda"))[0] is True
