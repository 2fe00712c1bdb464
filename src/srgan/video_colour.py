"""Colour in srgan.video, as pure functions: which YUV matrix and range a source uses (its
tags, or the players' guess when untagged), what the output is tagged with, the even sizes
4:2:0 chroma needs, and the display rotation applied to the pixels."""

from __future__ import annotations

import numpy as np

ITU601, ITU709 = 5, 1  # libswscale's SWS_CS_* numbers (AVColorSpace 5 and 6 are both BT.601)
RANGE_LIMITED, RANGE_FULL = 1, 2  # AVColorRange: MPEG (16-235), JPEG (0-255)
PRIMARIES = {ITU709: 1, ITU601: 6}  # AVColorPrimaries / AVColorTransferCharacteristic tags


def source_matrix(colorspace: int, width: int, height: int) -> int:
    """The YUV->RGB matrix of a source: its tag, or FFmpeg players' guess when untagged
    (BT.709 from 1280x720 up, BT.601 below)."""
    if colorspace == 1:
        return ITU709
    if colorspace in (5, 6):
        return ITU601
    if colorspace in (7, 9, 10):
        return {7: 7, 9: 9, 10: 9}[colorspace]  # SMPTE 240M, BT.2020 (ncl and cl)
    return ITU709 if width >= 1280 or height > 576 else ITU601


def source_range(color_range: int, pix_fmt: str) -> int:
    """Limited unless the source says full, or its pixel format is a full-range yuvj one."""
    if color_range == RANGE_FULL or pix_fmt.startswith("yuvj"):
        return RANGE_FULL
    return RANGE_LIMITED


def output_matrix(src_colorspace: int) -> int:
    """Keep a tagged BT.601/BT.709/BT.2020 matrix; an untagged source was decoded with a
    guess, and the (larger) output is written as BT.709 and says so."""
    return source_matrix(src_colorspace, 0, 0) if src_colorspace in (1, 5, 6, 7, 9, 10) \
        else ITU709


def even_size(height: int, width: int) -> tuple[int, int]:
    """4:2:0 chroma needs even sizes: an odd side is rounded up by one pixel."""
    return height + height % 2, width + width % 2


def rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Apply a display-matrix rotation (counter-clockwise degrees, multiples of 90)."""
    k = round(degrees / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
