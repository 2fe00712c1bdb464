"""Checks that keep a run from wasting hours or damaging its folder: one run per folder (a
lock), a batch that cannot fit in memory refused before any image is decoded, divergence
noticed even when bad steps do not come in one long streak, and a warning when the run will
take far longer than a newcomer expects."""

from __future__ import annotations

import errno
import fcntl
import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import torch

from srgan.train.config import Config, ConfigError
from srgan.train.stages import stage_class

LOCK_NAME = ".srgan-train.lock"
DIVERGE_WINDOW = 100  # more than half of the last this many steps skipped: diverged
ETA_WARN_SECONDS = 3 * 3600


# ------------------------------------------------------------------------------ run lock


class RunLock:
    """An exclusive `flock` on RUN_DIR/.srgan-train.lock for the whole run.

    The kernel drops the lock when its holder exits, however it exits (SIGKILL, power loss of
    a container), so a crashed run never blocks the next one; the file itself is left behind,
    harmless. The holder writes its pid and host into it for the second run's message.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)  # a file system without locks (some NFS): run unlocked
                return self
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(
                f"run folder {self.path.parent} is in use by another srgan train ({holder}); "
                "wait for it to end, or give this run another --run-dir / --set run.name=..."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ------------------------------------------------------------------------------ memory


def step_bytes_per_sample(cfg: Config) -> int:
    """A lower bound on the memory one training sample takes in a step: the float HR/LR crops,
    the int64 gather indices that cut them, and the generator activations kept for backward
    (about six per residual block at LR size, then the upsampling stages). The discriminator
    and VGG add more; a lower bound is enough to refuse batches that cannot possibly fit.
    Measured on the CPU (srresnet_x4, 96 px): 25.5 MiB a sample in fp32 (estimate 22.8),
    14.9 MiB with bf16 autocast (estimate 11.6)."""
    m, crop = cfg.model, cfg.data.crop
    lr_side = crop // m.scale
    act = 4 if cfg.train.amp == "none" else 2
    n = 3 * crop * crop * 4 + 3 * lr_side * lr_side * 4  # float crops
    n += 3 * crop * crop * 8  # gather indices (rows, dy, dx)
    lr_px = lr_side * lr_side
    n += act * m.channels * lr_px * (6 * m.num_blocks + 4)
    side = lr_side
    for _ in range(int(math.log2(m.scale))):
        n += act * (4 * m.channels * side * side + 2 * m.channels * (2 * side) ** 2)
        side *= 2
    return n + stage_class(cfg).sample_bytes(cfg, act)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for the step on `device` (None: unknown)."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    raise AssertionError


def check_batch_fits(
    cfg: Config, device: torch.device, processes: int = 1,
    memory: Callable[[torch.device], int | None] = available_memory,
) -> None:
    """Refuse, before minutes of image decoding, a train.batch_size whose step cannot fit in
    the memory of `device` (`processes` training processes sharing it, e.g. CPU ranks);
    `memory(device)` says how many bytes are free (None: unknown, no refusal)."""
    free = memory(device)
    if free is None:
        return
    per_sample = step_bytes_per_sample(cfg) * processes
    need = per_sample * cfg.train.batch_size
    if need <= free:
        return
    fits = max(0, free // per_sample)
    raise ConfigError(
        f"train.batch_size={cfg.train.batch_size} cannot fit: one step needs at least "
        f"{_size(need)} for {cfg.data.crop}px crops on a {cfg.model.num_blocks}-block, "
        f"{cfg.model.channels}-channel generator, and {device} has {_size(free)} available. "
        + (f"Use a smaller train.batch_size: at most {fits} could fit by this estimate, which "
           "is a lower bound, so fewer really do (a step measured before training says how "
           "many)."
           if fits else "Even a batch of 1 does not fit: use a smaller data.crop or model.")
    )


HEADROOM = 0.8  # of the free memory a measured step may plan to use
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_since_reset() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux 4.0+)
        return True
    except OSError:
        return False


def peak_bytes(run: Callable[[], None], device: torch.device, base: int) -> int | None:
    """The peak memory `run()` reaches on `device`, above `base` (bytes in use before the
    first measurement: memory kept from an earlier run is counted once, not twice). CPU:
    the process's peak RSS (VmHWM, reset first); CUDA: PyTorch's allocator peak."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    if device.type != "cpu" or not _reset_peak_rss():
        return None
    run()
    peak = _peak_rss_since_reset()
    return None if peak is None else max(0, peak - base)


def check_measured_batch(
    cfg: Config, device: torch.device, step: Callable[[int], None],
    memory: Callable[[torch.device], int | None] = available_memory,
) -> str | None:
    """Run `step(batch)` (one forward and backward that changes nothing) at two small batches,
    fit memory = fixed + per_sample * batch to their peaks, and refuse train.batch_size when
    it would use more than HEADROOM of the memory free now. The lower bound of
    check_batch_fits misses what only a real step shows (allocator slack, the losses, the
    data pipeline). Returns the line saying what was measured (None: nothing measurable)."""
    free = memory(device)
    base = (torch.cuda.memory_allocated(device) if device.type == "cuda" else _rss())
    if free is None or base is None:
        return None
    small = (2, 4)  # not 1: BatchNorm needs two values a channel
    peaks = []
    for b in small:
        peak = peak_bytes(lambda b=b: step(b), device, base)
        if peak is None:
            return None
        peaks.append(peak)
    per_sample = max((peaks[1] - peaks[0]) / (small[1] - small[0]),  # noise aside, at
                     step_bytes_per_sample(cfg))  # least the lower bound
    fixed = max(0.0, peaks[0] - per_sample * small[0])
    batch = cfg.train.batch_size
    need = fixed + per_sample * batch
    said = (f"memory: a step takes about {_size(fixed)} + {_size(per_sample)} a sample "
            f"(measured at batch {small[0]} and {small[1]}): {_size(need)} at batch {batch}, "
            f"of {_size(free)} available")
    if need <= HEADROOM * free:
        return said
    fits = int((HEADROOM * free - fixed) // per_sample) if HEADROOM * free > fixed else 0
    raise ConfigError(
        f"train.batch_size={batch} does not fit: {said}, and a run may plan on "
        f"{HEADROOM:.0%} of it. "
        + (f"Use train.batch_size={fits} or less." if fits >= 1 else
           "Even a batch of 1 does not fit: use a smaller data.crop or model.")
    )


def network_bytes(cfg: Config) -> tuple[int, int]:
    """(parameters, bytes) of the networks before any image: fp32 weights, plus the gradient
    and Adam's two moments of each trained one, plus the EMA copy. Counted on PyTorch's meta
    device, which allocates nothing, so a 100000-channel typo costs no memory to measure."""
    from srgan.nets import SRResNet

    m, t = cfg.model, cfg.train
    with torch.device("meta"):
        g = SRResNet(m.scale, m.num_blocks, m.channels)
        d = stage_class(cfg).new_discriminator(cfg)
    sizes = [(name, p.numel()) for name, p in g.named_parameters()]
    params = sum(n for _, n in sizes)
    trained = sum(n for name, n in sizes if not any(name.startswith(f) for f in m.freeze))
    total = params + 3 * trained + (params if t.ema > 0 else 0)
    if d is not None:
        n_d = sum(p.numel() for p in d.parameters())
        params += n_d
        total += 4 * n_d
    return params, 4 * total


def check_network_fits(
    cfg: Config, device: torch.device,
    memory: Callable[[torch.device], int | None] = available_memory,
) -> None:
    """Refuse, before it is built, a network whose weights and optimiser state alone exceed
    the memory of `device`: the cause is the architecture, not the batch."""
    free = memory(device)
    if free is None:
        return
    params, need = network_bytes(cfg)
    if need <= free:
        return
    m = cfg.model
    raise ConfigError(
        f"the networks alone cannot fit: model.num_blocks={m.num_blocks}, "
        f"model.channels={m.channels}{stage_class(cfg).size_keys(cfg)}"
        f" make {params / 1e6:,.0f}M parameters, which need {_size(need)} with their "
        f"gradients and optimiser state, and {device} has {_size(free)} available. Use a "
        "smaller model.channels or model.num_blocks (the paper: 16 blocks, 64 channels)."
    )


# ------------------------------------------------------------------------------ divergence


class DivergenceWatch:
    """Says when skipped (non-finite) steps mean the run has diverged: `max_bad` in a row, or
    more than half of the last DIVERGE_WINDOW steps. The second rule catches runs whose good
    and bad steps alternate forever, and, at the end, runs shorter than `max_bad` steps that
    were mostly skipped (lr = 1e10 for 10 steps), which would otherwise report "done"."""

    def __init__(self, max_bad: int, window: int = DIVERGE_WINDOW) -> None:
        self.max_bad = max_bad
        self.recent: deque[bool] = deque(maxlen=window)

    def add(self, bad: bool, bad_run: int) -> str | None:
        self.recent.append(bad)
        if bad_run >= self.max_bad:
            return f"{bad_run} non-finite losses in a row"
        if len(self.recent) == self.recent.maxlen:
            return self._mostly_bad()
        return None

    def at_end(self) -> str | None:
        """At the last step of the session: mostly skipped, however few steps it ran."""
        return self._mostly_bad() if self.recent else None

    def _mostly_bad(self) -> str | None:
        bad = sum(self.recent)
        if 2 * bad > len(self.recent):
            return f"{bad} of the last {len(self.recent)} steps had non-finite losses"
        return None


# ------------------------------------------------------------------------------ ETA


def _duration(seconds: float) -> str:
    if seconds >= 48 * 3600:
        return f"{seconds / 86400:.1f} days ({seconds / 3600:.0f} h)"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def eta_warning(
    run_dir: Path, remaining_steps: int, seconds_per_step: float,
    time_limit: float | None, limit: float = ETA_WARN_SECONDS,
) -> str | None:
    """A warning when the rest of the run would take more than `limit` seconds at the measured
    rate; it suggests --time-limit (or says where the given one stops the run)."""
    eta = remaining_steps * seconds_per_step
    if eta <= limit or (time_limit is not None and time_limit >= eta):
        return None  # short, or the time limit already lets it finish: as planned
    head = (f"warning: at the current rate ({seconds_per_step:.3g} s/step) the remaining "
            f"{remaining_steps:,} steps take about {_duration(eta)}.")
    if time_limit is not None:
        stop_after = max(0, int(time_limit / seconds_per_step))
        return (f"{head} --time-limit stops it after about {stop_after:,} more steps; "
                f"continue later with: srgan train --resume {run_dir}")
    return (f"{head} Train for a fixed time with --time-limit MINUTES (it stops cleanly with a "
            f"checkpoint and weights), fewer --set train.steps=N, or a GPU; Ctrl-C also stops "
            f"cleanly, and srgan train --resume {run_dir} continues.")
