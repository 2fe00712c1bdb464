"""Upscaler: run a generator over images of any size, mode and bit depth.

The image stays on the CPU; only tiles (with enough context around them that the result
equals a whole-image pass) travel to the device. Alpha, grey and 16-bit images are handled
here so that every front end (CLI, web, benchmark) behaves the same.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srgan.imageio import ImageData, from_array, from_pil, to_array, to_pil
from srgan.nets import SRResNet
from srgan.weights import load_generator

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_TILE_PAD = 24  # LR pixels of context around each tile; see tests/test_inference.py
# Bytes of activations per LR pixel per image in a forward pass, per unit of `channels`:
# the widest tensors live at the x2/x4 stages (channels*4 at x1 and x2, channels at x4).
_ACT_BYTES_PER_LR_PIXEL_PER_CHANNEL = 4 * 48


def pick_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype a device supports; half precision asked of a CPU falls back to fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return torch.float32
    if device.type == "cpu":
        if precision in ("fp16", "bf16"):
            warnings.warn(
                f"{precision} on the CPU is slower and less exact than fp32 here; using fp32",
                stacklevel=3,
            )
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16  # auto and fp16 on CUDA / MPS


@dataclass(frozen=True)
class Tile:
    """A tile of the input: the region it owns (y0:y1, x0:x1) and the padded region it reads."""

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int


def plan_tiles(height: int, width: int, tile: int, pad: int) -> list[Tile]:
    """Split an image into tiles of at most `tile` pixels a side, each read with `pad` context."""
    tiles = []
    ny, nx = math.ceil(height / tile), math.ceil(width / tile)
    # even split: tiles of near-equal size rather than a thin last one
    ys = [round(i * height / ny) for i in range(ny + 1)]
    xs = [round(i * width / nx) for i in range(nx + 1)]
    for i in range(ny):
        for j in range(nx):
            y0, y1, x0, x1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
            tiles.append(
                Tile(y0, y1, x0, x1, max(0, y0 - pad), min(height, y1 + pad),
                     max(0, x0 - pad), min(width, x1 + pad))
            )
    return tiles


def _tta_forward(fn, x: torch.Tensor) -> torch.Tensor:
    """x8 self-ensemble: every flip/rotation of the input, undone on the output, averaged."""
    total = None
    for rot in range(4):
        for flip in (False, True):
            t = torch.rot90(x, rot, (2, 3))
            if flip:
                t = torch.flip(t, (3,))
            y = fn(t)
            if flip:
                y = torch.flip(y, (3,))
            y = torch.rot90(y, -rot, (2, 3)).float()
            total = y if total is None else total + y
    return total / 8


class Upscaler:
    """Super-resolve images with a generator. Accepts and returns PIL images, NumPy arrays
    (HxW or HxWxC, uint8/uint16/float in [0,1]), float tensors (CxHxW or BxCxHxW in [0,1])
    and `ImageData`; the output is of the same kind."""

    def __init__(
        self,
        net: SRResNet,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget_mb: int | None = None,
    ) -> None:
        self.device = pick_device(device)
        self.dtype = pick_dtype(precision, self.device)
        self.net = net.to(self.device).eval()
        self.scale = net.scale
        self.tile_pad = tile_pad
        self.tile = tile if tile is not None else self._auto_tile(memory_budget_mb)
        if self.tile < 8:
            raise ValueError(f"tile must be at least 8 pixels, got {self.tile}")
        self.fp32_fallbacks = 0  # tiles redone in fp32 after non-finite half-precision output

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = "srresnet_x4",
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget_mb: int | None = None,
    ) -> Upscaler:
        """Load a shipped model by name (see `srgan models`) or a .safetensors model file."""
        return cls(load_generator(name_or_path), device, precision, tile, tile_pad,
                   memory_budget_mb)

    # ----------------------------------------------------------------- sizing
    def _auto_tile(self, budget_mb: int | None) -> int:
        """Largest square LR tile whose activations fit the memory budget."""
        if budget_mb is None:
            if self.device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(self.device)
                budget_mb = int(free / 2**20 * 0.5)
            else:
                budget_mb = 768
        per_pixel = _ACT_BYTES_PER_LR_PIXEL_PER_CHANNEL * self.net.channels
        if self.dtype != torch.float32:
            per_pixel //= 2
        side = int(math.sqrt(budget_mb * 2**20 / per_pixel)) - 2 * self.tile_pad
        return int(max(64, min(side, 2048)) // 8 * 8)

    # ----------------------------------------------------------------- core
    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Generator on one device batch in [0, 1] -> float32 in [0, 1] (unclamped)."""
        x = x.to(self.device, non_blocking=True)
        if self.dtype == torch.float32:
            return self.net.to_unit(self.net(x).float())
        with torch.autocast(self.device.type, dtype=self.dtype):
            y = self.net(x)
        y = y.float()
        if not torch.isfinite(y).all():  # fp16 overflow on some GPUs: redo in fp32
            self.fp32_fallbacks += 1
            y = self.net(x).float()
        return self.net.to_unit(y)

    def _run(self, x: torch.Tensor, tta: bool) -> torch.Tensor:
        return _tta_forward(self._forward, x) if tta else self._forward(x)

    def iter_tiles(self, height: int, width: int) -> list[Tile]:
        return plan_tiles(height, width, self.tile, self.tile_pad)

    @torch.inference_mode()
    def upscale_tensor(
        self, x: torch.Tensor, tta: bool = False, progress: Any | None = None
    ) -> torch.Tensor:
        """(B,3,H,W) or (3,H,W) float in [0,1] on any device -> same layout, x`scale`, on the
        CPU, clamped to [0,1]. Tiles larger images; `progress` is called once per tile."""
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) or (3,H,W) tensor, got {tuple(x.shape)}")
        x = x.float().cpu()
        b, _, h, w = x.shape
        s = self.scale
        out = torch.empty(b, 3, h * s, w * s, dtype=torch.float32)
        for t in self.iter_tiles(h, w):
            patch = x[:, :, t.py0:t.py1, t.px0:t.px1]
            y = self._run(patch, tta).cpu()
            oy, ox = (t.y0 - t.py0) * s, (t.x0 - t.px0) * s
            out[:, :, t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s] = y[
                :, :, oy:oy + (t.y1 - t.y0) * s, ox:ox + (t.x1 - t.x0) * s
            ]
            if progress is not None:
                progress(1)
        out.clamp_(0, 1)
        return out[0] if squeeze else out

    def upscale_array(
        self, pixels: np.ndarray, tta: bool = False, progress: Any | None = None
    ) -> np.ndarray:
        """HxWxC float32 in [0,1], C in 1..4 -> (sH)x(sW)xC float32 in [0,1].

        Grey is replicated to RGB and averaged back. Alpha is upscaled by the model too
        (as grey), after transparent pixels' colours are filled in from their opaque
        neighbours, so no black or stale colour bleeds into edges.
        """
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        c = pixels.shape[2]
        if c not in (1, 2, 3, 4):
            raise ValueError(f"expected 1 to 4 channels, got {c}")
        colour, alpha = (pixels[..., :-1], pixels[..., -1]) if c in (2, 4) else (pixels, None)
        if alpha is not None and alpha.min() < 1.0:
            colour = fill_transparent(colour, alpha)
        grey = colour.shape[2] == 1
        rgb = np.repeat(colour, 3, axis=2) if grey else colour
        t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
        y = self.upscale_tensor(t, tta, progress).permute(1, 2, 0)
        y = y.mean(dim=2, keepdim=True) if grey else y
        parts = [y]
        if alpha is not None:
            if alpha.min() >= 1.0:
                a = torch.ones(y.shape[0], y.shape[1], 1)
            else:
                at = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))
                a = self.upscale_tensor(at.expand(3, *at.shape), tta, progress).mean(0)[..., None]
            parts.append(a)
        return torch.cat(parts, dim=2).numpy() if len(parts) > 1 else y.numpy()

    def tiles_for(self, height: int, width: int, channels: int = 3, tta: bool = False) -> int:
        """How many forward passes an image needs (for progress bars)."""
        n = len(self.iter_tiles(height, width))
        return n * (2 if channels in (2, 4) else 1)

    # ----------------------------------------------------------------- front door
    def upscale_image(
        self,
        data: ImageData,
        outscale: float | None = None,
        tta: bool = False,
        progress: Any | None = None,
    ) -> ImageData:
        """Upscale decoded image data, keeping its mode, bit depth, ICC profile and EXIF."""
        out = self.upscale_array(data.pixels, tta, progress)
        if outscale is not None and outscale != self.scale:
            out = resize_to(out, data.height, data.width, outscale)
        return data.with_pixels(out)

    def upscale(self, image: Any, outscale: float | None = None, tta: bool = False) -> Any:
        """Upscale a PIL image, a NumPy array, a tensor or ImageData; returns the same kind."""
        if isinstance(image, ImageData):
            return self.upscale_image(image, outscale, tta)
        if isinstance(image, torch.Tensor):
            if not image.is_floating_point():
                raise TypeError("tensors must be float in [0, 1]")
            y = self.upscale_tensor(image, tta)
            if outscale is not None and outscale != self.scale:
                from srgan.resize import imresize

                h, w = image.shape[-2:]
                size = (max(1, round(h * outscale)), max(1, round(w * outscale)))
                y = imresize(y, size=size).clamp(0, 1)
            return y.to(image.device)
        if isinstance(image, np.ndarray):
            data = from_array(image)
            out = self.upscale_image(data, outscale, tta)
            arr = to_array(out, image.dtype)
            return arr[..., 0] if image.ndim == 2 else arr
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            return to_pil(self.upscale_image(from_pil(image), outscale, tta))
        raise TypeError(f"cannot upscale a {type(image).__name__}")


def resize_to(pixels: np.ndarray, height: int, width: int, outscale: float) -> np.ndarray:
    """Resize an upscaled HxWxC float image to round(outscale * input size), MATLAB bicubic."""
    from srgan.resize import imresize

    if not 0 < outscale <= 64:
        raise ValueError(f"outscale must be in (0, 64], got {outscale}")
    size = (max(1, round(height * outscale)), max(1, round(width * outscale)))
    t = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
    return imresize(t, size=size).clamp_(0, 1).permute(1, 2, 0).contiguous().numpy()


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

