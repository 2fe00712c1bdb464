"""srgan.heap: freed memory is kept for reuse, so big activations stop page-faulting."""

import os
import platform
import subprocess
import sys

import pytest

from srgan.heap import ENV_OPT_OUT, keep_freed_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc's mallopt")

# a child process, since the setting is process-wide
PROBE = """
import resource, sys, torch
from srgan.heap import keep_freed_memory

def faults(n=5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        torch.ones(16 << 20)  # 64 MiB, freed at once: what each layer's activation does
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
system = faults()
took = keep_freed_memory(True)
faults(20)  # glibc settles within about 9 blocks here, then reuses the same pages
kept = faults()
restored = keep_freed_memory(False)
print(took, restored, system, kept)
"""


@glibc
def test_kept_memory_is_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if k != ENV_OPT_OUT}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    took, restored = out[0] == "True", out[1] == "True"
    system, kept = (int(v) for v in out[2:])
    assert took and restored
    pages = 5 * (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert system > pages // 2, system  # glibc maps and unmaps each block: faults every time
    assert kept < pages // 20, kept  # reused: nothing to fault in


def test_opting_out_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv(ENV_OPT_OUT, "1")
    assert keep_freed_memory(True) is False
