"""Writing images: to a path (atomic, streamed) or to bytes (`encode`).

Writes to a path are encoded straight into a hidden temp file in the target folder (PNG
streamed a few MB of rows at a time, so a huge result never exists twice in memory), fsynced,
then renamed (or hard-linked when not overwriting, so an existing file is never clobbered by a
race). A failed write leaves no temp file and the old file untouched.
"""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from srgan.atomic import atomic_write
from srgan.imageio.errors import ImageWriteError, display_path, warn_image
from srgan.imageio.mark import MARK, MARK_XMP
from srgan.imageio.metadata import JPEG_MAX_EXIF, icc_fits
from srgan.imageio.pil import pil_from_uint
from srgan.imageio.png import Writable, write_png
from srgan.imageio.types import ImageData, QuantizedImage
from srgan.quantize import quantize

__all__ = ["WRITE_EXTENSIONS", "check_writable_size", "encode", "write_image"]

# Extension -> Pillow format name for write_image().
WRITE_EXTENSIONS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF",
}

Warn = Callable[[str], None]  # told what was lost on the way


def _flatten(data: ImageData, fmt: str, warn: Warn) -> np.ndarray:
    """Colour channels composited over white (formats without alpha), as floats."""
    if not data.has_alpha:
        return data.pixels
    alpha = data.alpha
    if float(alpha.min(initial=1.0)) < 1.0:
        warn(f"{fmt} has no alpha channel; transparency composited over white")
    return data.color * alpha + (1.0 - alpha)


_JPEG_MAX_SIDE = 65500  # libjpeg's JPEG_MAX_DIMENSION, below the format's 65535
_WEBP_MAX_SIDE = 16383  # libwebp's WEBP_MAX_DIMENSION


_MAX_SIDES = {"JPEG": _JPEG_MAX_SIDE, "WEBP": _WEBP_MAX_SIDE, "BMP": 2**31 - 1,
              "PNG": 2**31 - 1, "TIFF": 2**31 - 1}


def _format_of(label: Path | None, suffix: str) -> str:
    """The Pillow format name for an extension (".png", ".JPG"), or ImageWriteError."""
    fmt = WRITE_EXTENSIONS.get(suffix.lower())
    if fmt is None:
        raise ImageWriteError(label, f"unknown output extension {suffix!r} "
                                     f"(use one of {', '.join(sorted(WRITE_EXTENSIONS))})")
    return fmt


def check_writable_size(path: str | os.PathLike, width: int, height: int) -> None:
    """Raise ImageWriteError now if the format of `path` cannot hold a width x height image,
    so a caller can refuse before computing the pixels instead of after."""
    path = Path(os.fsdecode(path))
    fmt = _format_of(path, path.suffix)
    limit = _MAX_SIDES[fmt]
    if max(width, height) > limit:
        raise ImageWriteError(path, f"{fmt} images can be at most {limit} pixels on a side, "
                                    f"this one would be {width}x{height} (use --format png)")


def _stored_pixels(image: ImageData | QuantizedImage, label: Path | None, fmt: str,
                   warn: Warn) -> np.ndarray:
    """The integers the file will hold: PNG keeps the bit depth; TIFF keeps 16 bits for grey
    only; the rest hold 8 bits, without alpha for JPEG and BMP (composited over white, as
    floats, so both kinds of input give the same file). WebP has no grey, so grey becomes RGB."""
    channels = image.channels
    if fmt == "WEBP" and max(image.size) > _WEBP_MAX_SIDE:
        raise ImageWriteError(label, f"WebP images can be at most {_WEBP_MAX_SIDE} pixels "
                                     f"on a side, this one is {image.width}x{image.height}")
    if fmt == "PNG" or (fmt == "TIFF" and channels == 1):
        bits = image.bit_depth
    else:
        bits = 8
        if image.bit_depth == 16:
            warn(f"{fmt} is written with 8 bits per channel here; 16-bit precision lost")
    if fmt in ("JPEG", "BMP") and image.has_alpha:
        data = image.to_image_data() if isinstance(image, QuantizedImage) else image
        arr = quantize(_flatten(data, fmt, warn), 8)
    elif isinstance(image, ImageData):
        arr = quantize(image.pixels, bits)
    elif image.bit_depth == 16 and bits == 8:  # round(x * 255 / 65535), exactly: no ties
        arr = ((image.pixels.astype(np.uint32) * 510 + 65535) // 131070).astype(np.uint8)
    else:
        arr = image.pixels
    if fmt == "WEBP" and channels in (1, 2):
        arr = np.concatenate([arr[:, :, :1]] * 3 + ([arr[:, :, 1:]] if channels == 2 else []),
                             axis=2)
    return arr


def _encode(out: Writable, arr: np.ndarray, label: Path | None, fmt: str, quality: int,
            lossless: bool, icc: bytes | None, exif: bytes | None, warn: Warn) -> None:
    """Encode stored pixels (from `_stored_pixels`) into `out`. ICC profiles go only where
    their colour space matches the pixels; EXIF too long for JPEG is dropped with a warning.
    Every format that has a place for it gets srgan's mark (srgan.imageio.mark)."""
    channels = arr.shape[2]
    icc = icc if fmt != "BMP" and icc_fits(icc, channels) else None
    exif = exif if fmt != "BMP" else None
    if fmt == "PNG":
        write_png(out, arr, icc, exif, software=MARK)
        return
    kwargs: dict[str, object] = {}
    if fmt == "JPEG":
        if max(arr.shape[:2]) > _JPEG_MAX_SIDE:
            raise ImageWriteError(label, f"JPEG images can be at most {_JPEG_MAX_SIDE} pixels "
                                         f"on a side, this one is {arr.shape[1]}x{arr.shape[0]}")
        kwargs.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=True,
                      comment=MARK)
        if exif and len(exif) > JPEG_MAX_EXIF:
            warn(f"EXIF of {len(exif)} bytes is too long for JPEG; dropped")
            exif = None
    elif fmt == "WEBP":
        kwargs.update(quality=quality, lossless=lossless, exact=lossless, method=4,
                      xmp=MARK_XMP)
    elif fmt == "TIFF":
        kwargs.update(compression="tiff_deflate", software=MARK)
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        kwargs["exif"] = exif
    im = pil_from_uint(arr)
    try:
        if fmt == "TIFF":  # Pillow's TIFF writer seeks, so it gets a buffer
            buf = io.BytesIO()
            im.save(buf, fmt, **kwargs)
            out.write(buf.getbuffer())
        else:
            im.save(out, fmt, **kwargs)
    except _SinkError:
        raise
    except (OSError, ValueError) as exc:  # an encoder's own refusal, e.g. "broken data stream"
        raise ImageWriteError(label, f"the {fmt} encoder refused this "
                                     f"{im.size[0]}x{im.size[1]} image: {exc}") from None


class _SinkError(Exception):
    """Writing the temporary file failed (disk full, ...): kept apart from encoder errors."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Sink:
    """The temporary file as encoders see it. It has write() but no fileno(), so Pillow's
    encoders write through it (they would otherwise write to the descriptor directly), and a
    failed write surfaces as _SinkError, never as an encoder's OSError."""

    def __init__(self, fh: io.BufferedWriter) -> None:
        self._fh = fh

    def write(self, data: bytes | memoryview) -> int:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise _SinkError(exc) from None
        return len(data)

    def flush(self) -> None:
        pass


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "disk full (no space left on device)"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if isinstance(exc, PermissionError):
        return "permission denied (folder not writable?)"
    return exc.strerror or str(exc)


def write_image(
    image: ImageData | QuantizedImage, path: str | bytes | os.PathLike, *,
    overwrite: bool = False, quality: int = 95, lossless: bool = False,
) -> Path:
    """Write an image to `path`, the format chosen by the extension (.png, .jpg/.jpeg, .webp,
    .bmp, .tif/.tiff). Atomic; refuses to replace an existing file unless `overwrite`.

    `image` is ImageData (floats, rounded here) or QuantizedImage (integers, written as they
    are); the same pixels give the same file either way. PNG keeps 8 or 16 bits per
    `bit_depth`, grey, alpha, ICC and EXIF, and is streamed (memory does not grow with the
    image). JPEG and BMP have no alpha: it is composited over white (with an ImageWarning);
    JPEG uses 4:4:4 chroma at quality >= 90. WebP: `quality`, or `lossless=True`. TIFF:
    deflate, 16-bit only for grey. Lossy conversions emit ImageWarning. Raises
    ImageWriteError. Returns the path written."""
    path = Path(os.fsdecode(path))
    fmt = _format_of(path, path.suffix)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if path.is_dir():
        raise ImageWriteError(path, "is a folder")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise ImageWriteError(path, "already exists (pass overwrite=True / --overwrite)")
    parent = path.parent
    if not parent.is_dir():
        raise ImageWriteError(path, f"output folder {display_path(parent)} does not exist")
    def warn(message: str) -> None:  # blames write_image's caller
        warn_image(path, message, stacklevel=5)

    arr = _stored_pixels(image, path, fmt, warn)
    _atomic_write(path, lambda out: _encode(out, arr, path, fmt, quality, lossless,
                                            image.icc_profile, image.exif, warn), overwrite)
    return path


def encode(image: ImageData | QuantizedImage, format: str = "png", *, quality: int = 95,
           lossless: bool = False, notes: list[str] | None = None) -> bytes:
    """The bytes write_image would write, for an extension or format name ("png", ".jpg",
    "webp", ...). What is lost on the way (alpha for JPEG, 16 -> 8 bits) is appended to
    `notes` when a list is given (a server's answer carries it), else an ImageWarning.
    Raises ImageWriteError for what the format cannot hold."""
    fmt = _format_of(None, "." + format.lower().lstrip("."))
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")

    def warn(message: str) -> None:
        if notes is None:
            warn_image(None, message, stacklevel=5)
        else:
            notes.append(message)

    out = io.BytesIO()
    _encode(out, _stored_pixels(image, None, fmt, warn), None, fmt, quality, lossless,
            image.icc_profile, image.exif, warn)
    return out.getvalue()


def _atomic_write(path: Path, emit: Callable[[_Sink], None], overwrite: bool) -> None:
    """`srgan.atomic.atomic_write` with its failures as ImageWriteErrors that say why."""
    try:
        atomic_write(path, lambda fh: emit(_Sink(fh)), overwrite=overwrite)
    except FileExistsError:
        raise ImageWriteError(path, "already exists (pass overwrite=True / --overwrite)"
                              ) from None
    except _SinkError as exc:
        raise ImageWriteError(path, _os_reason(exc.error)) from None
    except OSError as exc:
        raise ImageWriteError(path, _os_reason(exc)) from None

