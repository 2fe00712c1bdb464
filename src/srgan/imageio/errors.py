"""The errors and warnings every part of `srgan.imageio` raises, and printable names."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

__all__ = ["ImageFileError", "ImageReadError", "ImageWarning", "ImageWriteError",
           "TooManyPixels", "display_path", "display_text", "warn_image"]


def display_path(path: str | os.PathLike | None) -> str:
    """A printable form of a path: non-UTF-8 bytes become \\xNN escapes instead of surrogates
    that would crash a print()."""
    if path is None:
        return "<memory>"
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def display_text(text: object) -> str:
    """A printable form of any text that may quote a path (an exception's message): file-name
    bytes that are not UTF-8 become \\xNN escapes as in display_path, and any other lone
    surrogate becomes a \\uXXXX escape, so the result always encodes as UTF-8."""
    text = str(text)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no file-name byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ImageFileError(ValueError):
    """Base of the read and write errors: `str()` is "<file>: <reason>"."""

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{display_path(path)}: {reason}")


class ImageReadError(ImageFileError):
    """An image file cannot be read (missing, not an image, corrupt, too large, ...)."""


class ImageWriteError(ImageFileError):
    """An image file cannot be written (exists, folder missing or read-only, disk full, ...)."""


class ImageWarning(UserWarning):
    """Something was lost or changed on the way (alpha dropped for JPEG, 16 -> 8 bits, ...)."""



class TooManyPixels(ImageReadError):
    """The header says more pixels than the limit: `width`, `height` and `limit` let a caller
    (the server) word its own refusal without checking the size a second time."""

    def __init__(self, path: str | os.PathLike | None, width: int, height: int,
                 limit: int, hint: str) -> None:
        self.width, self.height, self.limit = width, height, limit
        super().__init__(path, f"image is {width}x{height} = {width * height:,} pixels, over "
                               f"the limit of {limit:,} ({hint})")


def warn_image(path: str | os.PathLike | None, message: str, stacklevel: int = 3) -> None:
    """An ImageWarning "<file>: <message>" (the caller's caller is blamed by default)."""
    warnings.warn(f"{display_path(path)}: {message}", ImageWarning, stacklevel=stacklevel)
