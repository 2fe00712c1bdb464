"""The image types: `ImageData` (float32 pixels in [0, 1]) and `QuantizedImage` (the integers a
file stores), each with the metadata worth keeping, and the array conversions between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.quantize import quantize, to_float

__all__ = ["ImageData", "QuantizedImage", "from_array", "quantize", "to_array", "to_float"]


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
        return ImageData(to_float(self.pixels, self.bit_depth), bit_depth=self.bit_depth,
                         icc_profile=self.icc_profile, exif=self.exif,
                         source_format=self.source_format, warnings=list(self.warnings),
                         path=self.path)


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
        return ImageData(to_float(a, 8), bit_depth=bit_depth or 8)
    if a.dtype == np.uint16:
        return ImageData(to_float(a, 16), bit_depth=bit_depth or 16)
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
        return quantize(data.pixels, 8)
    if dt == np.uint16:
        return quantize(data.pixels, 16)
    if np.issubdtype(dt, np.floating):
        return data.pixels.astype(dt, copy=True)
    raise ValueError(f"unsupported dtype {dt} (use uint8, uint16 or a float type)")


