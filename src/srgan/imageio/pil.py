"""PIL images <-> the integers `srgan.imageio` works with: every mode normalised to L, LA, RGB
or RGBA (8 bits) or 16-bit grey, tRNS colour keys turned into alpha, CMYK and LAB converted."""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image

from srgan.imageio.metadata import build_image, icc_space
from srgan.imageio.types import ImageData
from srgan.quantize import quantize

__all__ = ["from_pil", "orientation_of", "pil_from_uint", "pil_to_uint", "to_pil",
           "with_key_alpha"]


def with_key_alpha(arr: np.ndarray, key, top: int) -> np.ndarray:
    """`arr` with an alpha channel from a tRNS-style colour key (grey int or RGB tuple): opaque
    (`top`) where a pixel differs from the key. Unchanged when there is no usable key."""
    if key is None:
        return arr
    try:
        k = np.asarray(key, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        return arr
    if k.size != arr.shape[2]:
        return arr
    opaque = np.any(arr.astype(np.int64) != k, axis=2, keepdims=True)
    return np.concatenate([arr, opaque.astype(arr.dtype) * arr.dtype.type(top)], axis=2)


@functools.cache
def _srgb_profile():
    """The sRGB profile converted colours are written with, made once: LittleCMS stamps a new
    profile with the current time, so a fresh one per image gave the same file a different
    ICC profile on every read."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _cmyk_to_rgb(im: Image.Image, notes: list[str]) -> tuple[Image.Image, bytes | None]:
    """CMYK -> RGB through the embedded profile (LittleCMS) into sRGB when there is one,
    otherwise Pillow's naive formula (colours only approximate)."""
    icc = im.info.get("icc_profile")
    if icc and icc_space(icc) == "CMYK":
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = _srgb_profile()
            rgb = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            notes.append("CMYK converted to sRGB through its embedded ICC profile")
            return rgb, dst.tobytes()
        except Exception as exc:  # a broken profile: fall back rather than fail the image
            notes.append(f"CMYK ICC profile unusable ({exc}); converted without it")
    else:
        notes.append("CMYK image without a CMYK ICC profile; converted to RGB approximately")
    return im.convert("RGB"), None


def pil_to_uint(im: Image.Image, notes: list[str]) -> tuple[np.ndarray, int, bytes | None]:
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
        srgb = _srgb_profile()
        im = ImageCms.profileToProfile(im, lab, srgb, outputMode="RGB")
        return np.asarray(im), 8, srgb.tobytes()
    if mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, notes)
        return np.asarray(im), 8, icc
    if mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(im)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        return (with_key_alpha(arr, trns, 255) if mode in ("L", "RGB") else arr), 8, icc
    if mode.startswith("I;16"):
        return with_key_alpha(np.asarray(im).astype(np.uint16)[:, :, None], trns, 65535), 16, icc
    if mode == "I":
        arr = np.asarray(im)
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise ValueError(
                f"32-bit integer image with values {lo}..{hi}, outside 0..65535; "
                "convert it to 8 or 16 bits first"
            )
        return with_key_alpha(arr.astype(np.uint16)[:, :, None], trns, 65535), 16, icc
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



def orientation_of(im: Image.Image) -> tuple[bytes | None, int | None]:
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
    exif_raw, orientation = orientation_of(img)
    arr, bits, icc = pil_to_uint(img, notes)
    return build_image(arr, bits, icc, exif_raw, orientation, img.format, notes,
                   None, apply_orientation)


def pil_from_uint(arr: np.ndarray) -> Image.Image:
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
    im = pil_from_uint(quantize(data.pixels, bits))
    if data.icc_profile:
        im.info["icc_profile"] = data.icc_profile
    if data.exif:
        im.info["exif"] = data.exif
    return im

