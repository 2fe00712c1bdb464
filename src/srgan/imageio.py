"""Image files <-> `ImageData` (float32 pixels in [0, 1] plus the metadata worth keeping).

Data flows files -> arrays -> files; this module knows nothing about torch. What it promises:

* Reading never allocates for an image larger than the pixel limit: the size is taken from the
  header first (`max_pixels`, env `SRGAN_MAX_PIXELS`, default 200 megapixels; 0 = no limit).
  Pillow's own decompression-bomb limit is switched off while we read, since ours decides.
* Every failure to read is an `ImageReadError` naming the file and the reason: zero bytes, not
  an image, truncated (Pillow's LOAD_TRUNCATED_IMAGES is forced off while we read), a PNG chunk
  CRC mismatch, no permission, a folder, too many pixels, ...
* Modes are normalised to 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels. 16-bit PNGs (grey, LA,
  RGB, RGBA) stay 16-bit: Pillow 13 reduces 16-bit colour PNGs to 8 bits, so those are decoded
  here, still with Pillow's C unfilter (its public "zip" decoder run once for the high bytes and
  once for the low bytes), and written back by a small numpy + zlib PNG encoder.
* EXIF orientation is applied to the pixels and the EXIF tag is reset to 1; the ICC profile and
  EXIF travel with the image and are written where the format can hold them.
* Writes are atomic: encoded straight into a hidden temp file in the target folder (PNG
  streamed a few MB of rows at a time, so a huge result never exists twice in memory),
  fsynced, then renamed (or hard-linked when not overwriting, so an existing file is never
  clobbered by a race). A failed write leaves no temp file and the old file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import stat
import struct
import threading
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from srgan.atomic import atomic_write

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS_ENV",
    "WRITE_EXTENSIONS",
    "ImageData",
    "ImageReadError",
    "ImageWarning",
    "ImageWriteError",
    "QuantizedImage",
    "display_path",
    "find_images",
    "from_array",
    "from_pil",
    "read_image",
    "read_quantized",
    "resolve_max_pixels",
    "to_array",
    "to_pil",
    "write_image",
]

DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = "SRGAN_MAX_PIXELS"

# Extensions find_images() picks up inside folders (compared lower-case).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".tif",
     ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".avif"}
)
# Extension -> Pillow format name for write_image().
WRITE_EXTENSIONS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF",
}
# Pillow plugins we let decode. Excluded on purpose: EPS (runs Ghostscript), TGA (no magic
# bytes, so arbitrary junk can be taken for one), and the exotic rest.
# (JPEG files with several pictures come out as MPO through the JPEG plugin.)
READ_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "TIFF", "GIF", "PPM", "AVIF")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EXIF_PREFIX = b"Exif\x00\x00"
_JPEG_MAX_EXIF = 65533
_MAX_ICC_BYTES = 16 << 20


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- data


@dataclass(eq=False)
class _Image:
    """What ImageData and QuantizedImage share: HxWxC `pixels` and the metadata."""

    pixels: np.ndarray
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), PIL order."""
        return self.width, self.height

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def is_grey(self) -> bool:
        return self.channels in (1, 2)

    @property
    def mode(self) -> str:
        """The PIL-style name of the channel layout: L, LA, RGB or RGBA."""
        return ("L", "LA", "RGB", "RGBA")[self.channels - 1]


@dataclass(eq=False)
class ImageData(_Image):
    """Pixels as float32 HxWxC in [0, 1] (C: 1 L, 2 LA, 3 RGB, 4 RGBA) plus metadata.

    `bit_depth` (8 or 16) is what the source had and what writers aim for; `exif` has its
    Orientation already applied to the pixels and reset to 1; `warnings` collects what was
    changed while reading (first frame of an animation, CMYK converted, ...).
    """

    def __post_init__(self) -> None:
        px = np.asarray(self.pixels)
        if px.ndim == 2:
            px = px[:, :, None]
        if px.ndim != 3 or px.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"pixels must be HxW or HxWxC with C in 1..4, got {px.shape}")
        if not np.issubdtype(px.dtype, np.floating):
            raise ValueError(f"pixels must be floats in [0, 1], got {px.dtype} (use from_array)")
        self.pixels = px.astype(np.float32, copy=False)
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {self.bit_depth}")

    @property
    def color(self) -> np.ndarray:
        """The colour channels, HxWx1 or HxWx3 (a view)."""
        return self.pixels[:, :, : self.channels - 1] if self.has_alpha else self.pixels

    @property
    def alpha(self) -> np.ndarray | None:
        """The alpha channel HxWx1 (a view), or None."""
        return self.pixels[:, :, -1:] if self.has_alpha else None

    def with_pixels(self, pixels: np.ndarray, **changes) -> ImageData:
        """A new ImageData with other pixels (e.g. upscaled) and the same metadata."""
        meta = {
            "bit_depth": self.bit_depth, "icc_profile": self.icc_profile, "exif": self.exif,
            "source_format": self.source_format, "warnings": list(self.warnings),
            "path": self.path,
        }
        meta.update(changes)
        return ImageData(pixels, **meta)


@dataclass(eq=False)
class QuantizedImage(_Image):
    """An image as the integers a file stores: uint8 (bit_depth 8) or uint16 (16) pixels, HxWxC
    with C 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA), plus metadata as in ImageData. A quarter of the
    memory of ImageData's float32 pixels, and written without any float copy; `pixels` may be
    a np.memmap for huge images. This is what `srgan upscale` produces."""

    def __post_init__(self) -> None:
        want = np.uint8 if self.bit_depth == 8 else np.uint16
        if self.bit_depth not in (8, 16) or self.pixels.dtype != want:
            raise ValueError(f"bit_depth {self.bit_depth} with {self.pixels.dtype} pixels")
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"pixels must be HxWxC with C in 1..4, got {self.pixels.shape}")

    def to_image_data(self) -> ImageData:
        """The same image as float ImageData (4x the memory; exact round trip)."""
        top = np.float32(255 if self.bit_depth == 8 else 65535)
        return ImageData(self.pixels.astype(np.float32) / top, bit_depth=self.bit_depth,
                         icc_profile=self.icc_profile, exif=self.exif,
                         source_format=self.source_format, warnings=list(self.warnings),
                         path=self.path)


# --------------------------------------------------------------------------- arrays


def _to_float(arr: np.ndarray, bits: int) -> np.ndarray:
    return arr.astype(np.float32) / np.float32(255 if bits == 8 else 65535)


def _quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    """float [0, 1] -> uint8/uint16, round half up, clipped; NaN -> 0."""
    top = 255 if bits == 8 else 65535
    x = np.nan_to_num(pixels.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    x = np.floor(np.clip(x, 0.0, 1.0) * np.float32(top) + np.float32(0.5))
    return x.astype(np.uint8 if bits == 8 else np.uint16)


def from_array(arr: np.ndarray, *, bit_depth: int | None = None) -> ImageData:
    """HxW or HxWxC (C 1..4) array -> ImageData. uint8 -> 8-bit, uint16 -> 16-bit; floats must
    lie in [0, 1] (bit_depth defaults to 8 for them); bool -> 0/1."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an HxW or HxWxC array with C in 1..4, got shape {a.shape}")
    if a.dtype == np.bool_:
        return ImageData(a.astype(np.float32), bit_depth=bit_depth or 8)
    if a.dtype == np.uint8:
        return ImageData(_to_float(a, 8), bit_depth=bit_depth or 8)
    if a.dtype == np.uint16:
        return ImageData(_to_float(a, 16), bit_depth=bit_depth or 16)
    if np.issubdtype(a.dtype, np.floating):
        if a.size and not np.isfinite(a).all():
            raise ValueError("float image contains NaN or infinity")
        if a.size and (a.min() < 0.0 or a.max() > 1.0):
            raise ValueError(f"float image must lie in [0, 1], got [{a.min()}, {a.max()}]")
        return ImageData(a.astype(np.float32), bit_depth=bit_depth or 8)
    raise ValueError(f"unsupported array dtype {a.dtype} (use uint8, uint16 or float)")


def to_array(data: ImageData, dtype: np.dtype | type | str = np.uint8) -> np.ndarray:
    """ImageData -> HxWxC array of `dtype` (uint8, uint16 or a float type, [0, 1])."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return _quantize(data.pixels, 8)
    if dt == np.uint16:
        return _quantize(data.pixels, 16)
    if np.issubdtype(dt, np.floating):
        return data.pixels.astype(dt, copy=True)
    raise ValueError(f"unsupported dtype {dt} (use uint8, uint16 or a float type)")


# --------------------------------------------------------------------------- metadata


def _normalise_exif(raw: bytes | None) -> tuple[int, bytes | None]:
    """Return (orientation, EXIF bytes with the "Exif\\0\\0" prefix and Orientation set to 1).

    The Orientation entry of IFD0 is patched in place, so every other tag (maker notes, GPS,
    sub-IFDs) survives byte for byte."""
    if not raw:
        return 1, None
    body = raw[6:] if raw.startswith(_EXIF_PREFIX) else raw
    out = _EXIF_PREFIX + body
    if len(body) < 8 or body[:2] not in (b"II", b"MM"):
        return 1, out
    e = "<" if body[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(e + "I", body, 4)
    if ifd + 2 > len(body):
        return 1, out
    (count,) = struct.unpack_from(e + "H", body, ifd)
    for i in range(count):
        off = ifd + 2 + 12 * i
        if off + 12 > len(body):
            break
        tag, typ, n = struct.unpack_from(e + "HHI", body, off)
        if tag == 0x0112 and typ == 3 and n >= 1:
            (value,) = struct.unpack_from(e + "H", body, off + 8)
            patched = bytearray(body)
            struct.pack_into(e + "H", patched, off + 8, 1)
            return (value if 1 <= value <= 8 else 1), _EXIF_PREFIX + bytes(patched)
    return 1, out


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1..8 applied to an HxWxC array (ImageOps.exif_transpose semantics)."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.transpose(1, 0, 2)
    elif orientation == 6:
        arr = np.rot90(arr, k=-1)
    elif orientation == 7:
        arr = np.rot90(arr, k=1)[:, ::-1]
    elif orientation == 8:
        arr = np.rot90(arr, k=1)
    return np.ascontiguousarray(arr)


def _icc_space(icc: bytes | None) -> str | None:
    """The data colour space an ICC profile describes ("RGB", "GRAY", "CMYK", ...)."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("latin-1").strip()


def _icc_fits(icc: bytes | None, channels: int) -> bool:
    space = _icc_space(icc)
    if space is None:
        return False
    return space == ("GRAY" if channels in (1, 2) else "RGB")


# --------------------------------------------------------------------------- PIL <-> data


def _key_alpha(arr: np.ndarray, key, top: int) -> np.ndarray | None:
    """Alpha from a tRNS-style colour key (grey int or RGB tuple), or None if unusable."""
    try:
        k = np.asarray(key, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if k.size != arr.shape[2]:
        return None
    opaque = np.any(arr.astype(np.int64) != k, axis=2, keepdims=True)
    return opaque.astype(arr.dtype) * arr.dtype.type(top)


def _cmyk_to_rgb(im: Image.Image, notes: list[str]) -> tuple[Image.Image, bytes | None]:
    """CMYK -> RGB through the embedded profile (LittleCMS) into sRGB when there is one,
    otherwise Pillow's naive formula (colours only approximate)."""
    icc = im.info.get("icc_profile")
    if icc and _icc_space(icc) == "CMYK":
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            rgb = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            notes.append("CMYK converted to sRGB through its embedded ICC profile")
            return rgb, dst.tobytes()
        except Exception as exc:  # a broken profile: fall back rather than fail the image
            notes.append(f"CMYK ICC profile unusable ({exc}); converted without it")
    else:
        notes.append("CMYK image without a CMYK ICC profile; converted to RGB approximately")
    return im.convert("RGB"), None


def _pil_to_uint(im: Image.Image, notes: list[str]) -> tuple[np.ndarray, int, bytes | None]:
    """Decode a PIL image of any mode into (HxWxC uint array, bit depth, ICC override or the
    original ICC). Raises ValueError for what cannot be represented."""
    icc = im.info.get("icc_profile")
    mode = im.mode
    trns = im.info.get("transparency")
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode in ("P", "PA"):
        has_a = mode == "PA" or im.has_transparency_data
        im = im.convert("RGBA" if has_a else "RGB")
        return np.asarray(im), 8, icc
    if mode in ("La", "RGBa"):  # premultiplied: Pillow's convert un-premultiplies
        mode = mode.upper()
        im = im.convert(mode)
    if mode == "RGBX":
        im, mode = im.convert("RGB"), "RGB"
    if mode in ("YCbCr", "HSV"):
        im, mode = im.convert("RGB"), "RGB"
    if mode == "LAB":
        from PIL import ImageCms

        lab = ImageCms.createProfile("LAB")
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        im = ImageCms.profileToProfile(im, lab, srgb, outputMode="RGB")
        return np.asarray(im), 8, srgb.tobytes()
    if mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, notes)
        return np.asarray(im), 8, icc
    if mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(im)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        if mode in ("L", "RGB") and trns is not None:
            a = _key_alpha(arr, trns, 255)
            if a is not None:
                arr = np.concatenate([arr, a], axis=2)
        return arr, 8, icc
    if mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.uint16)[:, :, None]
        if trns is not None:
            a = _key_alpha(arr, trns, 65535)
            if a is not None:
                arr = np.concatenate([arr, a], axis=2)
        return arr, 16, icc
    if mode == "I":
        arr = np.asarray(im)
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise ValueError(
                f"32-bit integer image with values {lo}..{hi}, outside 0..65535; "
                "convert it to 8 or 16 bits first"
            )
        arr = arr.astype(np.uint16)[:, :, None]
        if trns is not None:
            a = _key_alpha(arr, trns, 65535)
            if a is not None:
                arr = np.concatenate([arr, a], axis=2)
        return arr, 16, icc
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        if arr.size and not np.isfinite(arr).all():
            raise ValueError("32-bit float image contains NaN or infinity")
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError(
                f"32-bit float image with values {arr.min():g}..{arr.max():g}, outside [0, 1]; "
                "convert it to 8 or 16 bits first"
            )
        notes.append("32-bit float image; kept at 16-bit precision")
        return arr[:, :, None], 0, icc  # bit 0: already float, see _finish
    raise ValueError(f"unsupported image mode {mode!r}")


def _finish(
    arr: np.ndarray, bits: int, icc: bytes | None, exif_raw: bytes | None, orientation: int | None,
    fmt: str | None, notes: list[str], path: Path | None, apply_orientation: bool,
    quantized: bool = False,
) -> ImageData | QuantizedImage:
    exif_orientation, exif = _normalise_exif(exif_raw)
    if orientation is None:
        orientation = exif_orientation
    if apply_orientation and orientation != 1:
        arr = _apply_orientation(arr, orientation)
    elif not apply_orientation and exif_raw:  # pixels untouched: keep the tag as it was
        exif = exif_raw if exif_raw.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + exif_raw
    if icc is not None and not _icc_fits(icc, arr.shape[2]):
        notes.append(f"ICC profile for {_icc_space(icc)!r} data does not match the image; dropped")
        icc = None
    if quantized:
        if bits == 0:  # float source, kept at 16 bits
            arr, bits = _quantize(arr, 16), 16
        return QuantizedImage(arr, bits, icc, exif, fmt, notes, path)
    if bits == 0:  # float source
        return ImageData(arr, 16, icc, exif, fmt, notes, path)
    return ImageData(_to_float(arr, bits), bits, icc, exif, fmt, notes, path)


def _orientation_of(im: Image.Image) -> tuple[bytes | None, int | None]:
    """(raw EXIF bytes, orientation when it is not inside those bytes, e.g. TIFF tags)."""
    raw = im.info.get("exif")
    if isinstance(raw, Image.Exif):
        raw = raw.tobytes()
    if raw:
        return bytes(raw), None
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return None, 1
    return None, value if isinstance(value, int) and 1 <= value <= 8 else 1


def from_pil(img: Image.Image, *, apply_orientation: bool = False) -> ImageData:
    """A PIL image -> ImageData (modes normalised as for files; see read_image).

    In-memory images keep their pixel layout by default (`apply_orientation=False`), so an
    API caller gets back what it passed in; read_image() always applies the EXIF orientation.
    Raises ValueError for modes that cannot be represented."""
    notes: list[str] = []
    exif_raw, orientation = _orientation_of(img)
    arr, bits, icc = _pil_to_uint(img, notes)
    return _finish(arr, bits, icc, exif_raw, orientation, img.format, notes,
                   None, apply_orientation)


def _pil_from_uint(arr: np.ndarray) -> Image.Image:
    """HxWxC uint8 (C 1..4) or HxWx1 uint16 -> PIL L/LA/RGB/RGBA or I;16."""
    if arr.dtype == np.uint16:
        h, w = arr.shape[:2]
        return Image.frombytes("I;16", (w, h), arr[:, :, 0].astype("<u2").tobytes())
    return Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))


def to_pil(data: ImageData) -> Image.Image:
    """ImageData -> PIL image (L, LA, RGB, RGBA, or I;16 for 16-bit grey), with the ICC
    profile and EXIF in `.info`. Pillow has no 16-bit colour modes, so 16-bit LA/RGB/RGBA come
    out as 8-bit; use to_array(data, np.uint16) or write_image() to keep 16 bits."""
    bits = 16 if data.bit_depth == 16 and data.channels == 1 else 8
    im = _pil_from_uint(_quantize(data.pixels, bits))
    if data.icc_profile:
        im.info["icc_profile"] = data.icc_profile
    if data.exif:
        im.info["exif"] = data.exif
    return im


# --------------------------------------------------------------------------- reading

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
    DEFAULT_MAX_PIXELS. 0 (or negative) means no limit, returned as None."""
    if max_pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if env:
            try:
                max_pixels = int(env)
            except ValueError:
                raise ValueError(
                    f"{MAX_PIXELS_ENV} must be an integer number of pixels, got {env!r}"
                ) from None
        else:
            max_pixels = DEFAULT_MAX_PIXELS
    return None if max_pixels <= 0 else int(max_pixels)


def _check_size(path: Path, w: int, h: int, limit: int | None) -> None:
    if w <= 0 or h <= 0:
        raise ImageReadError(path, f"image has no pixels ({w}x{h})")
    if limit is not None and w * h > limit:
        raise ImageReadError(
            path,
            f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} "
            f"(raise it with max_pixels= or the {MAX_PIXELS_ENV} environment variable)",
        )


@dataclass
class _PngScan:
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    colour_type: int = 0
    interlace: int = 0
    idat: list[bytes] = field(default_factory=list)
    trns: bytes | None = None
    exif: bytes | None = None


def _scan_png(f, path: Path, limit: int | None) -> _PngScan:
    """Walk every chunk: check each CRC, that the file reaches IEND, and the IHDR size against
    the limit before anything is decoded. Keeps IDAT only for 16-bit colour images."""
    scan = _PngScan()
    f.seek(len(_PNG_MAGIC))
    first = True
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise ImageReadError(path, "truncated PNG (file ends before the IEND chunk)")
        length, ctype = struct.unpack(">I4s", head)
        name = ctype.decode("latin-1")
        if length > 0x7FFFFFFF:
            raise ImageReadError(path, f"corrupt PNG (chunk {name!r} claims {length} bytes)")
        if first and ctype != b"IHDR":
            raise ImageReadError(path, "corrupt PNG (first chunk is not IHDR)")
        keep = ctype in (b"IHDR", b"tRNS", b"eXIf") or (
            ctype == b"IDAT" and scan.bit_depth == 16 and scan.colour_type in (2, 4, 6)
        )
        crc = zlib.crc32(ctype)
        parts: list[bytes] = []
        remaining = length
        while remaining:
            block = f.read(min(remaining, 1 << 20))
            if not block:
                raise ImageReadError(path, f"truncated PNG (file ends inside chunk {name!r})")
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
            if keep:
                parts.append(block)
        tail = f.read(4)
        if len(tail) < 4:
            raise ImageReadError(path, f"truncated PNG (file ends inside chunk {name!r})")
        if struct.unpack(">I", tail)[0] != crc:
            raise ImageReadError(path, f"corrupt PNG (CRC mismatch in chunk {name!r})")
        data = b"".join(parts)
        if ctype == b"IHDR":
            if length != 13:
                raise ImageReadError(path, "corrupt PNG (bad IHDR length)")
            (scan.width, scan.height, scan.bit_depth, scan.colour_type, _, _,
             scan.interlace) = struct.unpack(">IIBBBBB", data)
            _check_size(path, scan.width, scan.height, limit)
        elif ctype == b"IDAT" and keep:
            scan.idat.append(data)
        elif ctype == b"tRNS":
            scan.trns = data
        elif ctype == b"eXIf":
            scan.exif = data
        elif ctype == b"IEND":
            return scan
        first = False


def _decode_png16_colour(scan: _PngScan, path: Path) -> np.ndarray:
    """16-bit LA/RGB/RGBA PNG -> HxWxC uint16, unfiltered by Pillow's C zip decoder."""
    size = (scan.width, scan.height)
    data = b"".join(scan.idat)
    args = (scan.interlace,)
    try:
        if scan.colour_type == 4:  # 4 bytes/pixel: L hi, L lo, A hi, A lo
            raw = np.asarray(Image.frombytes("RGBA", size, data, "zip", "RGBA", *args))
            raw = raw.astype(np.uint16)
            arr = np.stack([raw[..., 0] << 8 | raw[..., 1], raw[..., 2] << 8 | raw[..., 3]], 2)
        else:
            mode = "RGB" if scan.colour_type == 2 else "RGBA"
            hi = np.asarray(Image.frombytes(mode, size, data, "zip", mode + ";16B", *args))
            lo = np.asarray(Image.frombytes(mode, size, data, "zip", mode + ";16L", *args))
            arr = hi.astype(np.uint16) << 8 | lo.astype(np.uint16)
    except (ValueError, OSError) as exc:
        raise ImageReadError(path, f"corrupt or truncated PNG image data ({exc})") from None
    if scan.colour_type == 2 and scan.trns is not None and len(scan.trns) == 6:
        alpha = _key_alpha(arr, struct.unpack(">HHH", scan.trns), 65535)
        if alpha is not None:
            arr = np.concatenate([arr, alpha], axis=2)
    return arr


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


def read_image(path: str | bytes | os.PathLike, max_pixels: int | None = None) -> ImageData:
    """Read an image file into ImageData (see the module docstring for what is guaranteed).

    `max_pixels`: refuse images with more pixels, judged from the header before decoding;
    None = $SRGAN_MAX_PIXELS or DEFAULT_MAX_PIXELS, 0 = no limit.
    Animated files give their first frame and a warning in `.warnings`.
    Raises ImageReadError, and nothing else, for any file that cannot be read."""
    return _read(path, max_pixels, quantized=False)


def read_quantized(path: str | bytes | os.PathLike, max_pixels: int | None = None
                   ) -> QuantizedImage:
    """Like read_image, but the pixels stay the integers the file stores (uint8 or uint16;
    32-bit float sources are rounded to 16 bits): a quarter of read_image's memory, which
    is what a huge input needs. `Upscaler.upscale_quantized` takes this directly."""
    return _read(path, max_pixels, quantized=True)


def _read(path: str | bytes | os.PathLike, max_pixels: int | None, quantized: bool
          ) -> ImageData | QuantizedImage:
    path = Path(os.fsdecode(path))
    limit = resolve_max_pixels(max_pixels)
    with _open_checked(path) as f:
        try:
            magic = f.read(len(_PNG_MAGIC))
            scan = _scan_png(f, path, limit) if magic == _PNG_MAGIC else None
            f.seek(0)
            with _pillow_guard():
                return _decode(f, path, limit, scan, quantized)
        except ImageReadError:
            raise
        except MemoryError:
            raise ImageReadError(path, "not enough memory to decode this image") from None
        except Exception as exc:  # Pillow raises many types on malformed files
            raise ImageReadError(path, _describe(exc)) from exc


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


def _decode(f, path: Path, limit: int | None, scan: _PngScan | None, quantized: bool
            ) -> ImageData | QuantizedImage:
    try:
        im = Image.open(f, formats=_available_formats())
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "not an image file (or not a format srgan reads)") from None
    w, h = im.size
    _check_size(path, w, h, limit)
    notes: list[str] = []
    fmt = im.format
    frames = 1
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception as exc:
        raise ImageReadError(path, _describe(exc)) from None
    if frames > 1:
        notes.append(f"animated image with {frames} frames; only the first frame is used")
    if scan is not None and scan.bit_depth == 16 and scan.colour_type in (2, 4, 6):
        if frames > 1:
            im.seek(0)
        arr = _decode_png16_colour(scan, path)
        exif_raw = im.info.get("exif") or (scan.exif and _EXIF_PREFIX + scan.exif)
        return _finish(arr, 16, im.info.get("icc_profile"), exif_raw, None, fmt, notes, path,
                       True, quantized)
    im.load()
    exif_raw, orientation = _orientation_of(im)
    if exif_raw is None and scan is not None and scan.exif:
        exif_raw = _EXIF_PREFIX + scan.exif
    try:
        arr, bits, icc = _pil_to_uint(im, notes)
    except ValueError as exc:
        raise ImageReadError(path, str(exc)) from None
    if fmt == "TIFF" and bits == 8 and _tiff_is_16bit_colour(im):
        notes.append("16-bit colour TIFF read as 8 bits (use 16-bit PNG to keep 16 bits)")
    return _finish(arr, bits, icc, exif_raw, orientation, fmt, notes, path, True, quantized)


def _tiff_is_16bit_colour(im: Image.Image) -> bool:
    try:
        bps = im.tag_v2.get(258)
    except AttributeError:
        return False
    if isinstance(bps, int):
        bps = (bps,)
    return bool(bps) and len(bps) >= 3 and max(bps) > 8


# --------------------------------------------------------------------------- PNG encoder


def _filter_rows(rows: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """PNG-filter a block of rows (uint8, R x N) given the row above it (uint8, N): per row the
    filter with the smallest sum of |signed bytes| (the usual heuristic). Returns R x (1 + N).
    uint8 arithmetic wraps mod 256, which is exactly what the filters need."""
    x = rows
    b = np.empty_like(x)
    b[0] = prev
    b[1:] = x[:-1]
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    ai, bi, ci = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    pa, pb, pc = np.abs(bi - ci), np.abs(ai - ci), np.abs(ai + bi - 2 * ci)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    avg = ((ai + bi) >> 1).astype(np.uint8)
    cands = (x, x - a, x - b, x - avg, x - paeth)
    costs = np.stack([np.abs(v.view(np.int8)).view(np.uint8).sum(axis=1, dtype=np.int64)
                      for v in cands])
    best = np.argmin(costs, axis=0)
    out = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    out[:, 0] = best
    for kind, v in enumerate(cands):
        chosen = best == kind
        out[chosen, 1:] = v[chosen]
    return out


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


_IDAT_BYTES = 8 << 20  # compressed bytes per IDAT chunk (at most)
_PNG_BLOCK_BYTES = 1 << 20  # raw bytes of rows filtered and deflated per task (~20x in temporaries)
# zlib level and strategy as Pillow's encoder: files within 0.1% of its size
_PNG_LEVEL, _PNG_STRATEGY = 6, zlib.Z_FILTERED
_PNG_THREADS = max(1, min(8, os.cpu_count() or 1))
_png_pool: ThreadPoolExecutor | None = None
_png_pool_lock = threading.Lock()


def _png_executor() -> ThreadPoolExecutor:
    """Threads for PNG blocks (zlib and most of numpy release the GIL): one per core, up to 8."""
    global _png_pool
    with _png_pool_lock:
        if _png_pool is None:
            _png_pool = ThreadPoolExecutor(_PNG_THREADS, thread_name_prefix="srgan-png")
        return _png_pool


def _png_rows(block: np.ndarray) -> np.ndarray:
    """HxWxC uint8/uint16 -> H x (W*C*bytes) uint8, big-endian samples as PNG stores them."""
    rows = np.ascontiguousarray(block.astype(">u2") if block.dtype == np.uint16 else block)
    return rows.view(np.uint8).reshape(len(block), -1)


def _deflate_rows(arr: np.ndarray, y0: int, y1: int, last: bool) -> tuple[bytes, int, int]:
    """Filter rows y0:y1 (the row above comes from the image itself, so blocks are independent)
    and raw-deflate them, ending on a byte boundary (sync flush) so that the blocks concatenate
    into one deflate stream. Returns (deflated, adler32 of the filtered bytes, their length)."""
    rows = _png_rows(arr[y0:y1])
    prev = _png_rows(arr[y0 - 1 : y0])[0] if y0 else np.zeros(rows.shape[1], np.uint8)
    filtered = _filter_rows(rows, prev, rows.shape[1] // arr.shape[1])
    comp = zlib.compressobj(_PNG_LEVEL, zlib.DEFLATED, -15, 8, _PNG_STRATEGY)
    data = comp.compress(filtered) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return data, zlib.adler32(filtered), filtered.size


def _adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of A+B from those of A and B and B's length (zlib's adler32_combine)."""
    base = 65521
    rem = len2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 = (sum1 + (adler2 & 0xFFFF) + base - 1) % base
    sum2 = (sum2 + (adler1 >> 16) + (adler2 >> 16) + base - rem) % base
    return sum1 | (sum2 << 16)


def _write_png(out: _Sink, arr: np.ndarray, icc: bytes | None, exif: bytes | None) -> None:
    """Write HxWxC uint8 or uint16 pixels (C 1..4; may be a np.memmap) as a non-interlaced PNG.

    The rows are cut into blocks of about `_PNG_BLOCK_BYTES`, each filtered and deflated on its
    own thread (pigz's scheme: sync-flushed raw deflate blocks, one zlib header, Adler-32s
    combined), at most two blocks per thread in flight, written in order as IDAT chunks. So
    memory does not grow with the image, and the encoder, which at zlib level 6 is slower
    than a GPU's upscaling by far, uses every core. Same filter heuristic, level and
    strategy as Pillow's encoder; the files are as small (within 0.1% on Set14 upscaled)."""
    h, w, ch = arr.shape
    bits = 16 if arr.dtype == np.uint16 else 8
    header = struct.pack(">IIBBBBB", w, h, bits, {1: 0, 2: 4, 3: 2, 4: 6}[ch], 0, 0, 0)
    out.write(_PNG_MAGIC + _png_chunk(b"IHDR", header))
    if icc:
        out.write(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    if exif:
        out.write(_png_chunk(b"eXIf", exif[6:] if exif.startswith(_EXIF_PREFIX) else exif))
    step = max(1, _PNG_BLOCK_BYTES // max(1, w * ch * bits // 8))
    starts = range(0, h, step)
    pending: list[bytes] = [b"\x78\x9c"]  # zlib header: deflate, 32K window, default level
    pending_bytes, adler = 2, 1

    def emit(result: tuple[bytes, int, int]) -> None:
        nonlocal pending, pending_bytes, adler
        data, block_adler, size = result
        adler = _adler32_combine(adler, block_adler, size)
        pending.append(data)
        pending_bytes += len(data)
        if pending_bytes >= _IDAT_BYTES:
            out.write(_png_chunk(b"IDAT", b"".join(pending)))
            pending, pending_bytes = [], 0

    if len(starts) == 1:
        emit(_deflate_rows(arr, 0, h, True))
    else:
        pool = _png_executor()
        ahead = 2 * _PNG_THREADS
        queue: deque[Future] = deque()
        try:
            for y0 in starts:
                queue.append(pool.submit(_deflate_rows, arr, y0, min(h, y0 + step),
                                         y0 + step >= h))
                if len(queue) >= ahead:
                    emit(queue.popleft().result())
            while queue:
                emit(queue.popleft().result())
        finally:
            for f in queue:
                f.cancel()
    pending.append(struct.pack(">I", adler))
    out.write(_png_chunk(b"IDAT", b"".join(pending)))
    out.write(_png_chunk(b"IEND", b""))


# --------------------------------------------------------------------------- writing


def _warn(path: Path, message: str) -> None:
    warnings.warn(f"{display_path(path)}: {message}", ImageWarning, stacklevel=4)


def _flatten(data: ImageData, path: Path, fmt: str) -> np.ndarray:
    """Colour channels composited over white (formats without alpha), as floats."""
    if not data.has_alpha:
        return data.pixels
    alpha = data.alpha
    if float(alpha.min(initial=1.0)) < 1.0:
        _warn(path, f"{fmt} has no alpha channel; transparency composited over white")
    return data.color * alpha + (1.0 - alpha)


_JPEG_MAX_SIDE = 65500  # libjpeg's JPEG_MAX_DIMENSION, below the format's 65535
_WEBP_MAX_SIDE = 16383  # libwebp's WEBP_MAX_DIMENSION


_MAX_SIDES = {"JPEG": _JPEG_MAX_SIDE, "WEBP": _WEBP_MAX_SIDE, "BMP": 2**31 - 1,
              "PNG": 2**31 - 1, "TIFF": 2**31 - 1}


def check_writable_size(path: str | os.PathLike, width: int, height: int) -> None:
    """Raise ImageWriteError now if the format of `path` cannot hold a width x height image,
    so a caller can refuse before computing the pixels instead of after."""
    path = Path(os.fsdecode(path))
    fmt = WRITE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(path, f"unknown output extension {path.suffix!r} "
                                    f"(use one of {', '.join(sorted(WRITE_EXTENSIONS))})")
    limit = _MAX_SIDES[fmt]
    if max(width, height) > limit:
        raise ImageWriteError(path, f"{fmt} images can be at most {limit} pixels on a side, "
                                    f"this one would be {width}x{height} (use --ext png)")


def _stored_pixels(image: ImageData | QuantizedImage, path: Path, fmt: str) -> np.ndarray:
    """The integers the file will hold: PNG keeps the bit depth; TIFF keeps 16 bits for grey
    only; the rest hold 8 bits, without alpha for JPEG and BMP (composited over white, as
    floats, so both kinds of input give the same file). WebP has no grey, so grey becomes RGB."""
    channels = image.channels
    if fmt == "WEBP" and max(image.size) > _WEBP_MAX_SIDE:
        raise ImageWriteError(path, f"WebP images can be at most {_WEBP_MAX_SIDE} pixels "
                                    f"on a side, this one is {image.width}x{image.height}")
    if fmt == "PNG" or (fmt == "TIFF" and channels == 1):
        bits = image.bit_depth
    else:
        bits = 8
        if image.bit_depth == 16:
            _warn(path, f"{fmt} is written with 8 bits per channel here; 16-bit precision lost")
    if fmt in ("JPEG", "BMP") and image.has_alpha:
        data = image.to_image_data() if isinstance(image, QuantizedImage) else image
        arr = _quantize(_flatten(data, path, fmt), 8)
    elif isinstance(image, ImageData):
        arr = _quantize(image.pixels, bits)
    elif image.bit_depth == 16 and bits == 8:  # round(x * 255 / 65535), exactly: no ties
        arr = ((image.pixels.astype(np.uint32) * 510 + 65535) // 131070).astype(np.uint8)
    else:
        arr = image.pixels
    if fmt == "WEBP" and channels in (1, 2):
        arr = np.concatenate([arr[:, :, :1]] * 3 + ([arr[:, :, 1:]] if channels == 2 else []),
                             axis=2)
    return arr


def _encode(out: _Sink, arr: np.ndarray, path: Path, fmt: str, quality: int, lossless: bool,
            icc: bytes | None, exif: bytes | None) -> None:
    """Encode stored pixels (from `_stored_pixels`) into `out`. ICC profiles go only where
    their colour space matches the pixels; EXIF too long for JPEG is dropped with a warning."""
    channels = arr.shape[2]
    icc = icc if fmt != "BMP" and _icc_fits(icc, channels) else None
    exif = exif if fmt != "BMP" else None
    if fmt == "PNG":
        _write_png(out, arr, icc, exif)
        return
    kwargs: dict[str, object] = {}
    if fmt == "JPEG":
        if max(arr.shape[:2]) > _JPEG_MAX_SIDE:
            raise ImageWriteError(path, f"JPEG images can be at most {_JPEG_MAX_SIDE} pixels "
                                        f"on a side, this one is {arr.shape[1]}x{arr.shape[0]}")
        kwargs.update(quality=quality, subsampling=0 if quality >= 90 else 2, optimize=True)
        if exif and len(exif) > _JPEG_MAX_EXIF:
            _warn(path, f"EXIF of {len(exif)} bytes is too long for JPEG; dropped")
            exif = None
    elif fmt == "WEBP":
        kwargs.update(quality=quality, lossless=lossless, exact=lossless, method=4)
    elif fmt == "TIFF":
        kwargs.update(compression="tiff_deflate")
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        kwargs["exif"] = exif
    im = _pil_from_uint(arr)
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
        raise ImageWriteError(path, f"the {fmt} encoder refused this {im.size[0]}x{im.size[1]} "
                                    f"image: {exc}") from None


class _SinkError(Exception):
    """Writing the temporary file failed (disk full, ...): kept apart from encoder errors."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _write_chunk(fh: io.BufferedWriter, data: bytes | memoryview) -> None:
    """Write bytes to the open temporary file (a seam for disk-full tests)."""
    fh.write(data)


class _Sink:
    """The temporary file as encoders see it. It has write() but no fileno(), so Pillow's
    encoders write through it (they would otherwise write to the descriptor directly), and a
    failed write surfaces as _SinkError, never as an encoder's OSError."""

    def __init__(self, fh: io.BufferedWriter) -> None:
        self._fh = fh

    def write(self, data: bytes | memoryview) -> int:
        try:
            _write_chunk(self._fh, data)
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
    fmt = WRITE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ImageWriteError(path, f"unknown output extension {path.suffix!r} "
                                    f"(use one of {', '.join(sorted(WRITE_EXTENSIONS))})")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if path.is_dir():
        raise ImageWriteError(path, "is a folder")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise ImageWriteError(path, "already exists (pass overwrite=True / --overwrite)")
    parent = path.parent
    if not parent.is_dir():
        raise ImageWriteError(path, f"output folder {display_path(parent)} does not exist")
    arr = _stored_pixels(image, path, fmt)
    _atomic_write(path, lambda out: _encode(out, arr, path, fmt, quality, lossless,
                                            image.icc_profile, image.exif), overwrite)
    return path


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


# --------------------------------------------------------------------------- finding files


def find_images(inputs: Iterable[str | bytes | os.PathLike], recursive: bool = True) -> list[Path]:
    """Expand inputs into image files: folders give their image files (by extension,
    case-insensitive; hidden names skipped; sorted; sub-folders too if `recursive`), anything
    else is passed through as given so that read_image() reports what is wrong with it.

    Symlinked folders are followed once (loops are cut); unreadable folders are skipped with an
    ImageWarning; duplicates are dropped; non-UTF-8 names are kept as they are."""
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
            _walk(p, recursive, set(), found)
            for f in sorted(found):
                add(f)
        else:
            add(p)
    return result


def _walk(folder: Path, recursive: bool, visited: set[tuple[int, int]], out: list[Path]) -> None:
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
        _warn(folder, f"folder skipped: {exc.strerror or exc}")
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
                _walk(p, recursive, visited, out)
        elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and (
            is_file or entry.is_symlink()
        ):
            out.append(p)  # broken links included: reading them gives a clear error
