"""Files that appear whole or not at all.

Images, checkpoints, exported models and result tables are all written the same way: into
a hidden temporary file in the target folder, fsynced, then renamed over the target (or
hard-linked to it when it must not be replaced, which fails instead of clobbering a file that
appeared meanwhile), and the folder fsynced so the rename itself survives a crash. Whatever
goes wrong, the temporary file is removed and the old file, if any, is untouched.

Temporary names are short and fixed in length (`.srgan.<pid>.<8 chars>.tmp`), so an output
name may use the filesystem's whole 255 bytes. SIGTERM and SIGHUP remove the temporary files
being written before the process dies of the signal, and the first write into a folder
removes stale temporary files of this naming: those of processes that no longer run, not
written to for a while (a SIGKILL or a power cut leaves them).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# What open() would give a new file; mkstemp's 0600 would hide results from other users.
FILE_MODE = 0o666 & ~_umask()
TEMP_PREFIX = ".srgan."
TEMP_PATTERN = re.compile(r"^\.srgan\.(\d+)\.[0-9a-f]{8}\.tmp$")
STALE_SECONDS = 15 * 60  # a temporary file untouched this long, of a dead process, is litter
ABANDONED_SECONDS = 24 * 3600  # ... and one this old is litter whatever its pid says
CLEANUP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))

_live: dict[str, str] = {}  # temporary files being written by this process -> their target
_live_lock = threading.Lock()
_swept: set[str] = set()  # folders already cleaned of stale temporary files
_installed = False


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make renames in `folder` durable; silently nothing where folders cannot be fsynced."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _on_signal(signum: int, frame: object) -> None:
    """Remove the temporary files in flight, then die of the signal as without us. A forked
    child (a DataLoader worker) inherits the handler and the set: it removes only its own."""
    own = f"{TEMP_PREFIX}{os.getpid()}."
    for tmp in list(_live):
        if os.path.basename(tmp).startswith(own):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_signal_cleanup() -> bool:
    """Have SIGTERM / SIGHUP remove temporary files being written. Only from the main thread,
    and only for signals nobody else handles (a trainer's own handler is left alone).
    Returns whether the handlers are in place."""
    global _installed
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in CLEANUP_SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _on_signal)
    _installed = True
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Delete temporary files of our naming in `folder` that no running write owns: untouched
    for STALE_SECONDS and their process gone, or untouched for ABANDONED_SECONDS. Returns
    what was removed; errors (a read-only folder) remove nothing and raise nothing."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = TEMP_PATTERN.match(entry.name)
        if m is None or os.path.join(folder, entry.name) in _live:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            pid = int(m.group(1))
            if age > ABANDONED_SECONDS or (age > STALE_SECONDS and pid != os.getpid()
                                           and not _pid_alive(pid)):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        remove_stale_temps(folder)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temporary file of our naming beside `path`, registered for signal cleanup."""
    folder = path.parent
    for _ in range(100):
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o600)
        except FileExistsError:
            continue
        with _live_lock:
            _live[tmp] = str(path)
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder))


def atomic_write(
    path: str | os.PathLike, emit: Callable[[BinaryIO], object], *, overwrite: bool = True
) -> Path:
    """Write `path` with `emit(file)`, atomically (see the module docstring).

    Raises FileExistsError if `overwrite` is False and `path` exists, even if it appeared
    while `emit` ran; OSError from the filesystem (creating the temporary file included);
    and whatever `emit` raises."""
    path = Path(path)
    install_signal_cleanup()
    _sweep_once(path.parent)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            emit(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and fails if path exists
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links
                if path.exists():
                    raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already after os.replace; removed after link or failure
        with _live_lock:
            _live.pop(tmp, None)
    fsync_dir(path.parent)
    return path
