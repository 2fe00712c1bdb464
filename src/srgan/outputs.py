"""Where commands may write: the rules every command that writes files follows.

No command replaces a file it did not create in the same run unless the user said
`--overwrite`; none ever writes over one of its own inputs or a checkpoint (known by its
content), even then; and outputs stay
inside the folder the user gave. These checks run before any computing, so a mistake in
`-o` costs nothing.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path


class OutputError(ValueError):
    """An output path breaks one of the rules above; `str()` says which and how to fix it."""


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare the absolute names
        return os.path.abspath(a) == os.path.abspath(b)


def is_within(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies under it (by absolute name, and by real location)."""
    for p, f in ((os.path.abspath(path), os.path.abspath(folder)),
                 (os.path.realpath(path), os.path.realpath(folder))):
        if Path(p) == Path(f) or Path(f) in Path(p).parents:
            return True
    return False


class InputSet:
    """The files a command reads, to recognise an output that would replace one of them."""

    def __init__(self, files: Iterable[Path]) -> None:
        self._names: set[str] = set()
        self._ids: set[tuple[int, int]] = set()
        for f in files:
            self._names.add(os.path.abspath(f))
            try:
                st = os.stat(f)
                self._ids.add((st.st_dev, st.st_ino))
            except OSError:
                pass

    def __contains__(self, path: Path) -> bool:
        if os.path.abspath(path) in self._names:
            return True
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self._ids


VAL_STRIP = re.compile(r"step_\d{9}_.+\.png")  # srgan train's validation images


def is_run_output(path: Path) -> bool:
    """Whether `path` is an image `srgan train` wrote into a run folder (a validation strip,
    LR | SR | HR side by side, in RUN/val/, carrying srgan's mark): never a training image."""
    if not VAL_STRIP.fullmatch(path.name) or path.parent.name != "val":
        return False
    from srgan.imageio import has_mark

    return has_mark(path) is True


def check_name_part(value: str, option: str) -> str:
    """A piece of a file name given on the command line (`--suffix`): no folder parts, so an
    output cannot land outside the output folder."""
    bad = [c for c in (os.sep, os.altsep, "\0") if c and c in value]
    if bad:
        raise OutputError(f"{option} {value!r} must not contain {bad[0]!r}: it is part of a "
                          "file name, and outputs stay inside the output folder")
    return value


def check_target(path: Path, inputs: InputSet, overwrite: bool) -> None:
    """Refuse to write `path` over an input or a checkpoint (always) or over an existing
    file (unless `overwrite`), or where a folder or a file-as-folder is in the way."""
    if path in inputs:
        raise OutputError(f"output {path} is one of the inputs; an output never replaces "
                          "its input, even with --overwrite (choose another -o or name)")
    if path.is_dir():
        raise OutputError(f"output {path} is a folder")
    check_not_checkpoint(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OutputError(f"output {path} exists (use --overwrite to replace it)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"output {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"output {path}: cannot write into {parent} "
                                  "(permission denied)")
            break


def is_checkpoint(path: Path) -> bool:
    """Whether `path` holds what torch.save writes (a training checkpoint or any other saved
    state), by its content, whatever its name or folder: a pickle stream, or a zip archive
    with a data.pkl and none of TorchScript's constants.pkl. No command writes such a file,
    so none may replace one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    if head[:1] == b"\x80":  # pickle protocol 2+ (and the legacy torch.save format)
        return True
    if head != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    leaves = {n.rsplit("/", 1)[-1] for n in names}
    return "data.pkl" in leaves and "constants.pkl" not in leaves


def check_not_checkpoint(path: Path) -> None:
    """Refuse to write over a checkpoint, wherever it lies and even with --overwrite."""
    if is_checkpoint(path):
        raise OutputError(f"output {path} is a PyTorch checkpoint (saved training state); "
                          "it is never replaced, even with --overwrite (write elsewhere)")


def prepare_folder(folder: Path) -> Path:
    """Create the output folder now (not after the computing), or say why it cannot be."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is a file, not a folder; give a folder for -o")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the output folder "
                          f"({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: output folder is not writable (permission denied)")
    return folder
