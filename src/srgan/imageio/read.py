"""Reading images from paths, bytes or binary file objects, and `probe_size` (the header only).

What reading promises:

* Nothing is allocated for an image larger than the pixel limit: the size is taken from the
  header first (`max_pixels`, env `SRGAN_MAX_PIXELS`, default 200 megapixels; 0 = no limit).
  Pillow's own decompression-bomb limit is switched off while we read, since ours decides.
* Every failure to read is an `ImageReadError` naming the file and the reason: zero bytes, not
  an image, truncated (Pillow's LOAD_TRUNCATED_IMAGES is forced off while we read), a PNG chunk
  CRC mismatch, no permission, a folder, too many pixels (`TooManyPixels`), ...
* Modes are normalised to 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels; 16-bit PNGs stay 16-bit.
* EXIF orientation is applied to the pixels and the EXIF tag is reset to 1.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile

from srgan.imageio import pil, png
from srgan.imageio.errors import ImageReadError, TooManyPixels
from srgan.imageio.metadata import EXIF_PREFIX, build_image
from srgan.imageio.types import ImageData, QuantizedImage
from srgan.quantize import quantize

__all__ = ["FILE_MAX_PIXELS", "MAX_PIXELS_ENV", "READ_FORMATS", "Source", "check_pixels",
           "probe_size", "read_bytes", "read_image", "read_quantized", "read_rgb8",
           "resolve_max_pixels"]

FILE_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = "SRGAN_MAX_PIXELS"
# Pillow plugins we let decode. Excluded on purpose: EPS (runs Ghostscript), TGA (no magic
# bytes, so arbitrary junk can be taken for one), and the exotic rest.
# (JPEG files with several pictures come out as MPO through the JPEG plugin.)
READ_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "TIFF", "GIF", "PPM", "AVIF")

# A file path (str, bytes or os.PathLike) or a binary file object (read from its start).
Source = str | bytes | os.PathLike | BinaryIO

_guard_lock = threading.Lock()
_guard_users = 0
_guard_saved: tuple = ()


@contextlib.contextmanager
def _pillow_guard() -> Iterator[None]:
    """While any read is running: Pillow's bomb limit off (ours is checked first) and
    LOAD_TRUNCATED_IMAGES off (truncation must be an error). Restored by the last reader."""
    global _guard_users, _guard_saved
    with _guard_lock:
        if _guard_users == 0:
            _guard_saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
            Image.MAX_IMAGE_PIXELS = None
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _guard_users += 1
    try:
        yield
    finally:
        with _guard_lock:
            _guard_users -= 1
            if _guard_users == 0:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = _guard_saved


def resolve_max_pixels(max_pixels: int | None = None) -> int | None:
    """The pixel limit in force: `max_pixels` if given, else $SRGAN_MAX_PIXELS, else
    FILE_MAX_PIXELS. 0 means no limit, returned as None; a negative number is a
    ValueError (it used to switch the limit off as quietly as 0)."""
    if max_pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if env:
            try:
                max_pixels = int(env)
            except ValueError:
                max_pixels = -1
            if max_pixels < 0:
                raise ValueError(f"{MAX_PIXELS_ENV} must be a whole number of pixels, 0 for no "
                                 f"limit, got {env!r}") from None
        else:
            max_pixels = FILE_MAX_PIXELS
    if max_pixels < 0:
        raise ValueError(f"max_pixels must be a whole number of pixels, 0 for no limit, "
                         f"got {max_pixels!r}")
    return None if max_pixels == 0 else int(max_pixels)


def check_pixels(label: str | os.PathLike | None, w: int, h: int, limit: int | None) -> None:
    """Refuse an empty image, or one with more than `limit` pixels (TooManyPixels)."""
    if w <= 0 or h <= 0:
        raise ImageReadError(label, f"image has no pixels ({w}x{h})")
    if limit is not None and w * h > limit:
        raise TooManyPixels(label, w, h, limit,
                            f"raise it with max_pixels= or the {MAX_PIXELS_ENV} environment "
                            "variable")


def _open_checked(path: Path):
    """Open a path for reading after checking it is a non-empty regular file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        reason = "broken symbolic link" if path.is_symlink() else "no such file"
        raise ImageReadError(path, reason) from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot access ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(path, "is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _opened(source: Source, name: str | os.PathLike | None
            ) -> Iterator[tuple[BinaryIO, Path | None, Path | None]]:
    """(binary file at its start, the name errors use, the path the image records)."""
    if not hasattr(source, "read"):
        path = Path(os.fsdecode(source))  # type: ignore[arg-type]
        with _open_checked(path) as f:
            yield f, path, path
        return
    label = Path(os.fsdecode(name)) if name is not None else None
    f = source
    try:
        if not f.seekable():
            f = io.BytesIO(f.read())
        f.seek(0, os.SEEK_END)
        empty = f.tell() == 0
        f.seek(0)
    except OSError as exc:
        raise ImageReadError(label, f"cannot read ({exc.strerror or exc})") from None
    if empty:
        raise ImageReadError(label, "empty file (0 bytes)")
    yield f, label, None  # type: ignore[misc]


def read_image(source: Source, max_pixels: int | None = None, *,
               name: str | os.PathLike | None = None) -> ImageData:
    """Read an image file (a path or a binary file object) into ImageData.

    `max_pixels`: refuse images with more pixels, judged from the header before decoding;
    None = $SRGAN_MAX_PIXELS or FILE_MAX_PIXELS, 0 = no limit. `name` is what errors call
    a file object (default "<memory>"). Animated files give their first frame and a note in
    `.warnings`. Raises ImageReadError, and nothing else, for any file that cannot be read."""
    return _read(source, max_pixels, name, quantized=False)  # type: ignore[return-value]


def read_quantized(source: Source, max_pixels: int | None = None, *,
                   name: str | os.PathLike | None = None) -> QuantizedImage:
    """Like read_image, but the pixels stay the integers the file stores (uint8 or uint16;
    32-bit float sources are rounded to 16 bits): a quarter of read_image's memory, which
    is what a huge input needs. `Upscaler.upscale` takes this directly."""
    return _read(source, max_pixels, name, quantized=True)  # type: ignore[return-value]


def read_bytes(data: bytes | bytearray | memoryview, max_pixels: int | None = None, *,
               name: str | os.PathLike | None = None, quantized: bool = False
               ) -> ImageData | QuantizedImage:
    """An encoded image held in memory (an upload, say) -> ImageData, or QuantizedImage when
    `quantized`. (A `bytes` argument to read_image is a file name, hence this function.)"""
    return _read(io.BytesIO(data), max_pixels, name, quantized)


def read_rgb8(source: Source, max_pixels: int | None = None, *,
              name: str | os.PathLike | None = None) -> tuple[np.ndarray, list[str]]:
    """An image as H x W x 3 uint8 (writable), how training and the benchmark take images:
    grey replicated to RGB, alpha dropped, 16 bits rounded to 8 (half up). Also returns notes
    saying which of these happened."""
    image = read_quantized(source, max_pixels, name=name)  # 8-bit files never become floats
    pixels = image.pixels
    notes: list[str] = []
    if image.bit_depth == 16:
        pixels = quantize(image.to_image_data().pixels, 8)
    if image.has_alpha:
        pixels = pixels[:, :, :-1]
        notes.append("alpha ignored")
    if image.is_grey:
        pixels = np.repeat(pixels, 3, axis=2)
        notes.append("grey scored as RGB")
    if image.bit_depth == 16:
        notes.append("16-bit rounded to 8")
    pixels = np.ascontiguousarray(pixels)
    return (pixels if pixels.flags.writeable else pixels.copy()), notes


def probe_size(source: Source, max_pixels: int | None = None, *,
               name: str | os.PathLike | None = None) -> tuple[int, int]:
    """(width, height) from the header alone, nothing decoded: the cheap check before queueing
    work. Raises ImageReadError (TooManyPixels over `max_pixels`, as read_image would)."""
    limit = resolve_max_pixels(max_pixels)
    with _opened(source, name) as (f, label, _):
        try:
            with _pillow_guard(), _open_pil(f, label, limit) as im:
                return im.size
        except ImageReadError:
            raise
        except Exception as exc:  # Pillow raises many types on broken headers
            raise ImageReadError(label, _describe(exc)) from exc
        finally:
            with contextlib.suppress(OSError, ValueError):
                f.seek(0)


def _read(source: Source, max_pixels: int | None, name: str | os.PathLike | None,
          quantized: bool) -> ImageData | QuantizedImage:
    limit = resolve_max_pixels(max_pixels)
    with _opened(source, name) as (f, label, path):
        try:
            magic = f.read(len(png.PNG_MAGIC))
            scan = None
            if magic == png.PNG_MAGIC:
                scan = png.scan_png(f, label, lambda w, h: check_pixels(label, w, h, limit))
            f.seek(0)
            with _pillow_guard():
                return _decode(f, label, path, limit, scan, quantized)
        except ImageReadError:
            raise
        except MemoryError:
            raise ImageReadError(label, "not enough memory to decode this image") from None
        except Exception as exc:  # Pillow raises many types on malformed files
            raise ImageReadError(label, _describe(exc)) from exc


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text:
        return f"truncated or incomplete image data ({text})"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"read error ({exc.strerror})"
    return f"corrupt or unsupported image ({text})"


@functools.cache
def _available_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in READ_FORMATS if f in Image.OPEN)


def _open_pil(f: BinaryIO, label: Path | None, limit: int | None) -> Image.Image:
    """Pillow's lazy open (header only) with our formats, then the size check."""
    try:
        im = Image.open(f, formats=_available_formats())
    except Image.UnidentifiedImageError:
        raise ImageReadError(label, "not an image file (or not a format srgan reads)") from None
    check_pixels(label, *im.size, limit)
    return im


def _decode(f: BinaryIO, label: Path | None, path: Path | None, limit: int | None,
            scan: png.PngScan | None, quantized: bool) -> ImageData | QuantizedImage:
    """Decode an opened file (Pillow, or our 16-bit colour PNG path). `label` names it in
    errors, `path` is what the image records as its file (None for file objects)."""
    im = _open_pil(f, label, limit)
    notes: list[str] = []
    fmt = im.format
    frames = 1
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception as exc:
        raise ImageReadError(label, _describe(exc)) from None
    if frames > 1:
        notes.append(f"animated image with {frames} frames; only the first frame is used")
    if scan is not None and scan.bit_depth == 16 and scan.colour_type in (2, 4, 6):
        if frames > 1:
            im.seek(0)
        arr = png.decode_png16_colour(scan, label)
        exif_raw = im.info.get("exif") or (scan.exif and EXIF_PREFIX + scan.exif)
        return build_image(arr, 16, im.info.get("icc_profile"), exif_raw, None, fmt, notes,
                           path, True, quantized)
    im.load()
    exif_raw, orientation = pil.orientation_of(im)
    if exif_raw is None and scan is not None and scan.exif:
        exif_raw = EXIF_PREFIX + scan.exif
    try:
        arr, bits, icc = pil.pil_to_uint(im, notes)
    except ValueError as exc:
        raise ImageReadError(label, str(exc)) from None
    if fmt == "TIFF" and bits == 8 and _tiff_is_16bit_colour(im):
        notes.append("16-bit colour TIFF read as 8 bits (use 16-bit PNG to keep 16 bits)")
    return build_image(arr, bits, icc, exif_raw, orientation, fmt, notes, path, True, quantized)


def _tiff_is_16bit_colour(im: Image.Image) -> bool:
    try:
        bps = im.tag_v2.get(258)
    except AttributeError:
        return False
    if isinstance(bps, int):
        bps = (bps,)
    return bool(bps) and len(bps) >= 3 and max(bps) > 8

