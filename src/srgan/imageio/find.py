"""The folder walk: which files of the inputs a command should read."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from srgan.imageio.errors import warn_image

__all__ = ["IMAGE_EXTENSIONS", "find_files", "find_images"]

# Extensions find_images() picks up inside folders (compared lower-case).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".tif",
     ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".avif"}
)


def find_images(inputs: Iterable[str | bytes | os.PathLike], recursive: bool = True) -> list[Path]:
    """Expand inputs into image files: folders give their image files (by extension,
    case-insensitive; hidden names skipped; sorted; sub-folders too if `recursive`), anything
    else is passed through as given so that read_image() reports what is wrong with it.

    Symlinked folders are followed once (loops are cut); unreadable folders are skipped with an
    ImageWarning; duplicates are dropped; non-UTF-8 names are kept as they are."""
    return find_files(inputs, IMAGE_EXTENSIONS, recursive)


def find_files(inputs: Iterable[str | bytes | os.PathLike], extensions: frozenset[str],
               recursive: bool = True) -> list[Path]:
    """`find_images` for any set of (lower-case) `extensions`: `srgan upscale` walks a
    folder once for its images and videos together."""
    result: list[Path] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            result.append(p)

    for item in inputs:
        p = Path(os.fsdecode(item))
        if os.path.isdir(p):  # False, not OSError, for a name too long: read_image says why
            found: list[Path] = []
            _walk(p, extensions, recursive, set(), found)
            for f in sorted(found):
                add(f)
        else:
            add(p)
    return result


def _walk(folder: Path, extensions: frozenset[str], recursive: bool,
          visited: set[tuple[int, int]], out: list[Path]) -> None:
    try:
        st = folder.stat()
    except OSError:
        return
    key = (st.st_dev, st.st_ino)
    if key in visited:
        return  # a symlink loop or a folder reached twice
    visited.add(key)
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError as exc:
        warn_image(folder, f"folder skipped: {exc.strerror or exc}", stacklevel=4)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        p = folder / entry.name
        try:
            is_dir = entry.is_dir()
            is_file = entry.is_file()
        except OSError:
            is_dir = is_file = False
        if is_dir:
            if recursive:
                _walk(p, extensions, recursive, visited, out)
        elif Path(entry.name).suffix.lower() in extensions and (
            is_file or entry.is_symlink()
        ):
            out.append(p)  # broken links included: reading them gives a clear error
