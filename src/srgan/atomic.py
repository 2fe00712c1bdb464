"""Files that appear whole or not at all.

Images, checkpoints, exported models and result tables are all written the same way: into
a hidden temporary file in the target folder, fsynced, then renamed over the target (or
hard-linked to it when it must not be replaced, which fails instead of clobbering a file that
appeared meanwhile), and the folder fsynced so the rename itself survives a crash. Whatever
goes wrong, the temporary file is removed and the old file, if any, is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# What open() would give a new file; mkstemp's 0600 would hide results from other users.
FILE_MODE = 0o666 & ~_umask()


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


def atomic_write(
    path: str | os.PathLike, emit: Callable[[BinaryIO], object], *, overwrite: bool = True
) -> Path:
    """Write `path` with `emit(file)`, atomically (see the module docstring).

    Raises FileExistsError if `overwrite` is False and `path` exists, even if it appeared
    while `emit` ran; OSError from the filesystem (creating the temporary file included);
    and whatever `emit` raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    fsync_dir(path.parent)
    return path
