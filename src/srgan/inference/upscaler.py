"""`Upscaler`, the public face of inference: `from_pretrained`, and one `upscale` that takes
PIL images, NumPy arrays, tensors, `ImageData` or `QuantizedImage` and gives back the same
kind. The tiles, batches and precision are the private engine's (`inference._engine`); alpha
and grey are `inference.planes`'; `ImageUpscaler` is the half of the face any backend
shares (the "bicubic" pseudo-model in `srgan.evaluate.methods` is one).

The checks here keep wrong values from the network: an int32 array read as if it were in
[0, 1], or floats outside it, would come out as garbage rather than an error.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srgan.device import pick_device
from srgan.imageio import (
    ImageData,
    QuantizedImage,
    from_array,
    from_pil,
    quantize,
    to_array,
    to_pil,
)
from srgan.inference._engine import CPU_BUDGET_MB, MIN_SIDE, SMALL_MARGIN, Pass, TileEngine
from srgan.inference.batches import DEFAULT_SPILL_BYTES
from srgan.inference.outscale import resize_tensor, resize_to
from srgan.inference.planes import pin_alpha
from srgan.inference.tiling import Tile
from srgan.nets import SRResNet
from srgan.packaged import DEFAULT_MODEL
from srgan.precision import pick_dtype
from srgan.weights import LoadedModel, denoise_generator, load_generator

BACKENDS = ("torch", "onnxruntime")
DEFAULT_TILE_PAD = 24  # LR pixels of context around each tile; see tests/test_inference.py
ARRAY_DTYPES = "uint8, uint16, or float (float32, float64) in [0, 1]"
Progress = Callable[[int], Any]

__all__ = ["ARRAY_DTYPES", "BACKENDS", "CPU_BUDGET_MB", "DEFAULT_TILE_PAD", "MIN_SIDE",
           "SMALL_MARGIN", "ImageUpscaler", "Upscaler", "check_pixels"]


def _count(value: Any, name: str, minimum: int, unit: str = "") -> int:
    """A whole-number argument, checked: inf, nan, 2.5, True or "64" is a ValueError naming
    it (a tile of inf used to end in ZeroDivisionError at upscale time); 64.0 is 64."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}{unit}, "
                         f"got {value!r}")
    return int(value)


def check_pixels(pixels: np.ndarray) -> int:
    """Refuse arrays the network cannot read right; return their bit depth (8 for floats,
    as `imageio.from_array` counts them)."""
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"expected a NumPy array, got {type(pixels).__name__}")
    if pixels.dtype == np.uint8:
        return 8
    if pixels.dtype == np.uint16:
        return 16
    if pixels.dtype.kind != "f":
        raise TypeError(f"cannot upscale an array of {pixels.dtype}: use {ARRAY_DTYPES} "
                        "(imageio.from_array converts)")
    if pixels.size:
        lo, hi = float(pixels.min()), float(pixels.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("float pixels contain NaN or infinity")
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"float pixels must lie in [0, 1], got [{lo:g}, {hi:g}]")
    return 8


def _check_bits(bits: int) -> int:
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    return bits


def _quantized(data: ImageData, bits: int) -> QuantizedImage:
    """Float ImageData -> QuantizedImage of `bits`, rounded as imageio rounds."""
    return QuantizedImage(quantize(data.pixels, bits), bits, data.icc_profile, data.exif,
                          data.source_format, list(data.warnings), data.path)


class ImageUpscaler:
    """What every upscaling backend offers: `upscale(image, outscale, ...)` over the kinds a
    caller holds. A backend provides `scale` and three steps: `_image` (ImageData ->
    ImageData, resized to `outscale`), `_integers` (ImageData or QuantizedImage ->
    QuantizedImage of `bits`, at the backend's own scale) and `_tensor` ((B,3,H,W) float ->
    (B,3,sH,sW) float on the CPU)."""

    scale: int

    def upscale(self, image: Any, outscale: float | None = None, *, tta: bool = False,
                progress: Progress | None = None, bits: int | None = None,
                spill_dir: str | Path | None = None) -> Any:
        """Upscale a PIL image, a NumPy array (HxW or HxWxC, uint8, uint16 or float in
        [0, 1]), a float tensor ((3,H,W) or (B,3,H,W) in [0, 1]), ImageData or QuantizedImage;
        returns the same kind (arrays of the same dtype, tensors on the same device), by
        `scale`, or resized to `outscale` x the input (MATLAB bicubic).

        `tta`: the x8 self-ensemble. `progress(n)` hears of tiles as they finish.
        QuantizedImage in, or ImageData with `bits` (8 or 16): each tile is rounded to
        integers on the device and written straight into a QuantizedImage of `bits` (default
        the source's depth) -- in a memory-mapped file in `spill_dir` when huge -- so no float
        copy of the output exists; pixels equal the float path's, rounded, up to one level."""
        call = Pass(tta=tta, progress=progress)
        if isinstance(image, QuantizedImage) or (isinstance(image, ImageData) and bits):
            out_bits = _check_bits(bits or image.bit_depth)
            if outscale is None or outscale == self.scale:
                return self._integers(image, out_bits, call, spill_dir)
            floats = image.to_image_data() if isinstance(image, QuantizedImage) else image
            return _quantized(self._image(floats, outscale, call), out_bits)
        if isinstance(image, ImageData):
            return self._image(image, outscale, call)
        if isinstance(image, torch.Tensor):
            return self._any_tensor(image, outscale, call)
        if isinstance(image, np.ndarray):
            check_pixels(image)
            out = self._image(from_array(image), outscale, call)
            arr = to_array(out, image.dtype)
            return arr[..., 0] if image.ndim == 2 else arr
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            return to_pil(self._image(from_pil(image), outscale, call))
        raise TypeError(f"cannot upscale a {type(image).__name__}")

    def _any_tensor(self, image: torch.Tensor, outscale: float | None, call: Pass
                    ) -> torch.Tensor:
        if not image.is_floating_point():
            raise TypeError(f"tensors must be float in [0, 1], got {image.dtype}")
        x = image.unsqueeze(0) if image.dim() == 3 else image
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) or (3,H,W) tensor, got {tuple(image.shape)}")
        y = self._tensor(x, call)
        if outscale is not None and outscale != self.scale:
            y = resize_tensor(y, *image.shape[-2:], outscale)
        return (y[0] if image.dim() == 3 else y).to(image.device)

    def _image(self, data: ImageData, outscale: float | None, call: Pass) -> ImageData:
        raise NotImplementedError  # pragma: no cover - interface

    def _integers(self, data: ImageData | QuantizedImage, bits: int, call: Pass,
                  spill_dir: str | Path | None) -> QuantizedImage:
        return _quantized(self._image(data.to_image_data() if isinstance(data, QuantizedImage)
                                      else data, None, call), bits)

    def _tensor(self, x: torch.Tensor, call: Pass) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface


class Upscaler(ImageUpscaler):
    """Super-resolve images with a generator (see `upscale` for what it takes and returns).

    `precision`: see `srgan.precision` (auto runs 16-bit images in fp32 on the CPU, where it
    would otherwise pick the bf16 mix). `tile` / `tile_pad`: LR pixels per tile and of
    context around it (default: as large as `memory_budget_mb` holds). `batch`: tiles per
    forward pass (default: as many as the budget holds). `compile`: torch.compile the network
    (CUDA; pays off over many images of one size). `backend`: "torch", or "onnxruntime" (CPU
    only; the exported ONNX graph). `spill_bytes`: integer outputs larger than this live in a
    memory-mapped temporary file (None: always in RAM). The caller's `net` is not modified: a
    fused copy runs.
    """

    def __init__(
        self,
        net: SRResNet | LoadedModel,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget_mb: int | None = None,
        *,
        batch: int | None = None,
        compile: bool = False,
        backend: str = "torch",
        spill_bytes: int | None = DEFAULT_SPILL_BYTES,
    ) -> None:
        if isinstance(net, LoadedModel):
            net = net.net
        self.device = pick_device(device)
        self.precision = precision
        self.dtype = pick_dtype(precision, self.device)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "onnxruntime" and self.device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on the CPU; use device='cpu'")
        self._engine = TileEngine(
            net, self.device, precision, self.dtype,
            None if tile is None else _count(tile, "tile", 8, " pixels"),
            _count(tile_pad, "tile_pad", 0),
            None if memory_budget_mb is None else _count(memory_budget_mb,
                                                         "memory_budget_mb", 1),
            None if batch is None else _count(batch, "batch", 1),
            compile, backend,
            None if spill_bytes is None else _count(spill_bytes, "spill_bytes", 0))
        e = self._engine
        self.net, self.scale, self.backend = net, e.scale, backend
        self.tile, self.tile_pad, self.batch = e.tile, e.tile_pad, e.batch
        self.compile, self.budget_mb = e.compile, e.budget_mb

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL,
        device: str | torch.device = "auto",
        precision: str = "auto",
        *,
        denoise: float | None = None,
        **options: Any,
    ) -> Upscaler:
        """Load a shipped model by name (see `srgan models`) or a .safetensors model file;
        `options` are the class's own (tile, tile_pad, memory_budget_mb, batch, compile,
        backend, spill_bytes).

        `denoise` (0 to 1) blends the weights of srresnet_x4 (0: keeps fine texture, and the
        noise) and srresnet_real_x4 (1: removes noise, JPEG blocks and blur); the model must
        then be one of the two or left at its default."""
        model = (load_generator(name_or_path) if denoise is None
                 else denoise_generator(name_or_path, denoise))
        return cls(model, device, precision, **options)

    # ----------------------------------------------------------------- what callers ask
    @property
    def fp32_fallbacks(self) -> int:
        """Tiles redone in fp32 after non-finite half-precision output, so far."""
        return self._engine.fp32_fallbacks

    def runs_half(self, bits: int = 8) -> bool:
        """Whether an image of `bits` per channel runs in half precision (fp16 or bf16)."""
        return self._engine.runs_half(bits)

    def iter_tiles(self, height: int, width: int) -> list[Tile]:
        """The tiles (with their context windows) an image of this size runs in."""
        return self._engine.iter_tiles(height, width)

    def tiles_for(self, height: int, width: int, channels: int = 3) -> int:
        """How many tiles an image needs (for progress bars): alpha runs separately."""
        return len(self.iter_tiles(height, width)) * (2 if channels in (2, 4) else 1)

    def batch_size(self, batch: int, height: int, width: int) -> int:
        """Tiles per forward pass for a (batch, 3, height, width) input."""
        return self._engine.batch_size(batch, height, width)

    # ----------------------------------------------------------------- the three steps
    def _image(self, data: ImageData, outscale: float | None, call: Pass) -> ImageData:
        """Decoded image data -> upscaled, keeping its mode, bit depth, ICC profile, EXIF."""
        out = self._engine.run_pixels(data.pixels, call, bits=data.bit_depth)
        if outscale is not None and outscale != self.scale:
            out = resize_to(out, data.height, data.width, outscale)
            if data.has_alpha:  # the resize rings again around transparent areas
                pin_alpha(out[:, :, -1], data.pixels[:, :, -1])
        return data.with_pixels(out)

    def _integers(self, data: ImageData | QuantizedImage, bits: int, call: Pass,
                  spill_dir: str | Path | None) -> QuantizedImage:
        """A QuantizedImage input (`imageio.read_quantized`) stays integers and is converted
        a batch of tiles at a time, so a huge input costs its file's bytes, not 4x that; the
        result is identical to that of the same image as ImageData."""
        out = self._engine.run_pixels(data.pixels, call, bits=data.bit_depth, out_bits=bits,
                                      spill_dir=spill_dir)
        return QuantizedImage(out, bits, data.icc_profile, data.exif, data.source_format,
                              list(data.warnings), data.path)

    def _tensor(self, x: torch.Tensor, call: Pass) -> torch.Tensor:
        return self._engine.run_tensor(x, call).permute(0, 3, 1, 2).contiguous()
