"""Alpha and grey: how an image of 1 to 4 channels becomes what an RGB network can run.

Grey runs as RGB (a broadcast view, not three copies) and is averaged back; so does an RGB
image whose three channels are equal (a grey photograph stored as RGB), which is then
written back as RGB with three equal channels, so that it never gains colour; alpha runs
through the network too (as grey), after transparent pixels' colours are filled in from
their opaque neighbours, and is then pinned to exactly 0 / the maximum where the input was
fully transparent / opaque. Both of `Upscaler`'s pixel paths (float and quantised) use this.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from srgan.quantize import to_float


def check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"cannot upscale an empty image ({width}x{height} pixels)")


@dataclass(frozen=True)
class Planes:
    """An image split for the network: colour (HxWx1 or HxWx3; float32 in [0, 1], or the
    integers as they are), alpha (HxW) or None, and whether the alpha is fully opaque."""

    colour: np.ndarray
    alpha: np.ndarray | None
    opaque: bool
    grey_rgb: bool = False  # colour is one channel of an RGB image whose channels are equal

    @property
    def grey(self) -> bool:
        return self.colour.shape[2] == 1

    @property
    def colour_channels(self) -> int:
        """Colour channels of the output: the input's (3 for a grey RGB image)."""
        return 3 if self.grey_rgb else self.colour.shape[2]

    @property
    def channels(self) -> int:
        """Channels of the output: the input's."""
        return self.colour_channels + (self.alpha is not None)

    def colour_tensor(self) -> torch.Tensor:
        """(1,3,H,W): float32 (converted if need be), or the integers without a copy; grey
        becomes a broadcast view."""
        colour = self.colour
        if colour.dtype.kind == "f":
            colour = np.ascontiguousarray(colour, dtype=np.float32)
        t = readonly_view(colour).permute(2, 0, 1)
        return (t.expand(3, *t.shape[1:]) if t.shape[0] == 1 else t)[None]

    def alpha_tensor(self) -> torch.Tensor:
        """(1,3,H,W) float32 view of the alpha, run as grey."""
        assert self.alpha is not None
        at = torch.from_numpy(np.ascontiguousarray(self.alpha, dtype=np.float32))
        return at.expand(1, 3, *at.shape)


def split_planes(pixels: np.ndarray) -> Planes:
    """HxW or HxWxC (C 1..4) pixels -> Planes. Integer pixels stay integers unless something
    is transparent: filling needs floats, so then colour and alpha become float32 in [0, 1],
    converted as imageio does."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3:
        raise ValueError(f"expected an HxW or HxWxC array, got shape {pixels.shape}")
    check_size(pixels.shape[0], pixels.shape[1])
    c = pixels.shape[2]
    if c not in (1, 2, 3, 4):
        raise ValueError(f"expected 1 to 4 channels, got {c}")
    colour = pixels if c in (1, 3) else pixels[..., :-1]
    grey_rgb = colour.shape[2] == 3 and channels_equal(colour)
    if grey_rgb:  # run as grey: an RGB network may tint a grey photo (up to 33 levels seen)
        colour = colour[..., :1]
    if c not in (2, 4):
        return Planes(colour, None, True, grey_rgb)
    alpha = pixels[..., -1]
    integer = pixels.dtype.kind in "ui"
    if alpha.min() >= (np.iinfo(alpha.dtype).max if integer else 1.0):
        return Planes(colour, alpha, True, grey_rgb)
    if integer:
        bits = 8 if pixels.dtype == np.uint8 else 16
        colour, alpha = to_float(colour, bits), to_float(alpha, bits)
    return Planes(fill_transparent(colour, alpha), alpha, False, grey_rgb)


def channels_equal(colour: np.ndarray, rows: int = 256) -> bool:
    """Whether the three channels of HxWx3 `colour` are equal everywhere; compared a block
    of rows at a time, so a colour image stops at its first block and a huge grey one
    needs no image-sized mask."""
    for y in range(0, colour.shape[0], rows):
        block = colour[y:y + rows]
        if not (np.array_equal(block[..., 0], block[..., 1])
                and np.array_equal(block[..., 0], block[..., 2])):
            return False
    return True


def readonly_view(arr: np.ndarray) -> torch.Tensor:
    """A tensor sharing `arr`'s memory, also when numpy marks it read-only (Pillow's decoded
    pixels are): the tiler only reads its input, so no copy is needed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(arr)


def pin_alpha(out: np.ndarray, alpha: np.ndarray) -> None:
    """In place: output alpha over fully transparent input pixels becomes exactly 0, over
    fully opaque ones exactly the maximum. The network (and a resize) blur alpha across
    edges, which left a faint frame and halo (alpha 1..49) where nothing should show, and
    let opaque pixels turn slightly see-through. `out` is HxW (floats in [0, 1] or
    integers), `alpha` the input's hxw, floats in [0, 1] or integers; each output pixel
    takes its nearest input pixel."""
    h, w = alpha.shape
    oh, ow = out.shape
    top = 1.0 if out.dtype.kind == "f" else np.iinfo(out.dtype).max
    full = 1.0 if alpha.dtype.kind == "f" else np.iinfo(alpha.dtype).max
    clear, solid = alpha <= 0, alpha >= full
    if oh % h == 0 and ow % w == 0 and oh // h == ow // w:  # an exact scale: strided views,
        s = oh // h  # no output-sized index arrays for huge images
        for dy in range(s):
            for dx in range(s):
                view = out[dy::s, dx::s]
                view[clear] = 0
                view[solid] = top
        return
    iy = np.minimum(((np.arange(oh) + 0.5) * h / oh).astype(np.int64), h - 1)
    ix = np.minimum(((np.arange(ow) + 0.5) * w / ow).astype(np.int64), w - 1)
    for rows in range(0, oh, 1024):  # row blocks: no output-sized mask at once
        r = iy[rows:rows + 1024]
        block = out[rows:rows + len(r)]
        block[clear[r][:, ix]] = 0
        block[solid[r][:, ix]] = top


def fill_transparent(colour: np.ndarray, alpha: np.ndarray, levels: int = 12) -> np.ndarray:
    """Give fully and partly transparent pixels the colour of their opaque surroundings.

    Colour under alpha = 0 is arbitrary (often black); a network reading across an edge
    would smear it into the visible side. An alpha-weighted image pyramid (push-pull) gives
    every pixel the local average of visible colour; blending by alpha keeps visible pixels.
    """
    t = torch.from_numpy(np.ascontiguousarray(colour, dtype=np.float32)).permute(2, 0, 1)[None]
    a = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))[None, None]
    # weight: emphasise visible pixels; a tiny floor keeps the average defined everywhere
    num, den = t * a, a
    pyramid = [(num, den)]
    for _ in range(levels):
        if min(num.shape[-2:]) <= 1:
            break
        num = nn.functional.avg_pool2d(num, 2, ceil_mode=True)
        den = nn.functional.avg_pool2d(den, 2, ceil_mode=True)
        pyramid.append((num, den))
    fill = pyramid[-1][0] / pyramid[-1][1].clamp_min(1e-8)
    for num, den in reversed(pyramid[:-1]):
        up = nn.functional.interpolate(fill, size=num.shape[-2:], mode="bilinear",
                                       align_corners=False)
        w = den.clamp(0, 1)
        level = num / den.clamp_min(1e-8)
        fill = torch.where(den > 1e-6, w * level + (1 - w) * up, up)
    out = a * t + (1 - a) * fill
    return out[0].permute(1, 2, 0).numpy()
