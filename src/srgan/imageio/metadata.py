"""EXIF and ICC: the orientation applied to the pixels (and reset to 1 in the EXIF kept), ICC
profiles kept only where their colour space fits the pixels, and `build_image`, which puts
decoded integers and this metadata together into an ImageData or QuantizedImage."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from srgan.imageio.types import ImageData, QuantizedImage
from srgan.quantize import quantize, to_float

__all__ = ["EXIF_PREFIX", "JPEG_MAX_EXIF", "apply_orientation", "build_image", "icc_fits",
           "icc_space", "normalise_exif"]

EXIF_PREFIX = b"Exif\x00\x00"
JPEG_MAX_EXIF = 65533  # one APP1 segment


def normalise_exif(raw: bytes | None) -> tuple[int, bytes | None]:
    """Return (orientation, EXIF bytes with the "Exif\\0\\0" prefix and Orientation set to 1).

    The Orientation entry of IFD0 is patched in place, so every other tag (maker notes, GPS,
    sub-IFDs) survives byte for byte."""
    if not raw:
        return 1, None
    body = raw[6:] if raw.startswith(EXIF_PREFIX) else raw
    out = EXIF_PREFIX + body
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
            return (value if 1 <= value <= 8 else 1), EXIF_PREFIX + bytes(patched)
    return 1, out


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
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


def icc_space(icc: bytes | None) -> str | None:
    """The data colour space an ICC profile describes ("RGB", "GRAY", "CMYK", ...)."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("latin-1").strip()


def icc_fits(icc: bytes | None, channels: int) -> bool:
    space = icc_space(icc)
    if space is None:
        return False
    return space == ("GRAY" if channels in (1, 2) else "RGB")



def build_image(
    arr: np.ndarray, bits: int, icc: bytes | None, exif_raw: bytes | None, orientation: int | None,
    fmt: str | None, notes: list[str], path: Path | None, reorient: bool,
    quantized: bool = False,
) -> ImageData | QuantizedImage:
    """Decoded integers (`bits` 8 or 16; 0 for float pixels) plus metadata -> an image: EXIF
    orientation applied when asked (and reset to 1), an ICC profile that does not fit dropped
    with a note. QuantizedImage when `quantized` (float sources rounded to 16 bits)."""
    exif_orientation, exif = normalise_exif(exif_raw)
    if orientation is None:
        orientation = exif_orientation
    if reorient and orientation != 1:
        arr = apply_orientation(arr, orientation)
    elif not reorient and exif_raw:  # pixels untouched: keep the tag as it was
        exif = exif_raw if exif_raw.startswith(EXIF_PREFIX) else EXIF_PREFIX + exif_raw
    if icc is not None and not icc_fits(icc, arr.shape[2]):
        notes.append(f"ICC profile for {icc_space(icc)!r} data does not match the image; dropped")
        icc = None
    if quantized:
        if bits == 0:  # float source, kept at 16 bits
            arr, bits = quantize(arr, 16), 16
        return QuantizedImage(arr, bits, icc, exif, fmt, notes, path)
    if bits == 0:  # float source
        return ImageData(arr, 16, icc, exif, fmt, notes, path)
    return ImageData(to_float(arr, bits), bits, icc, exif, fmt, notes, path)

