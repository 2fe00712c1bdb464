"""Upscaler: run a generator over images of any size, mode and bit depth.

The image stays on the CPU; only tiles (with enough context around them that the result
equals a whole-image pass) travel to the device. Alpha, grey and 16-bit images are handled
here so that every front end (CLI, web, benchmark) behaves the same.

The fast path (benchmarks/infer_throughput.py measures it against a naive baseline):

* the network runs as `srgan.fuse.inference_model`: BatchNorm folded into the convolutions,
  the output range folded into the last one, channels_last; fp16 on GPUs, a bf16 mix on
  CPUs with native bf16 (`srgan.precision`), fp32 on other CPUs;
* all tiles of an image read windows of one size (shifted inwards at the borders, so they
  read real pixels, never padding), so several tiles go through the network in one batch;
* on CUDA, batches travel through pinned memory with asynchronous copies, and one batch's
  result is collected while the next one computes;
* `upscale_quantized` writes each tile straight into a uint8/uint16 image (a memory-mapped
  temporary file for huge ones): peak memory is the tile budget plus the output's own bytes.

The folder pipeline that overlaps decoding and encoding with this is in
`srgan.commands.pipeline`; alpha and grey in `srgan.inference.planes`.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srgan.device import pick_device
from srgan.fuse import inference_model
from srgan.imageio import ImageData, QuantizedImage
from srgan.inference import adapters
from srgan.inference.batches import (
    DEFAULT_SPILL_BYTES,
    NonFiniteOutputError,
    Pending,
    output_buffer,
    post_float,
    quantize,
    tta_forward,
)
from srgan.inference.planes import check_size, pin_alpha, split_planes
from srgan.inference.tiling import Tile, plan_tiles
from srgan.nets import SRResNet
from srgan.packaged import DEFAULT_MODEL
from srgan.precision import image_dtype, pick_dtype
from srgan.weights import denoise_generator, load_generator

BACKENDS = ("torch", "onnxruntime")
DEFAULT_TILE_PAD = 24  # LR pixels of context around each tile; see tests/test_inference.py
# Peak bytes per LR pixel of a forward pass in float32 (measured on the CPU for 64 channels:
# ~1 KB trunk, ~9.5 KB whole network). The fast model runs a tile's trunk at once
# (16 * channels, plus ~400 for its output and the copies made of it) and the x2/x4 stages in
# chunks (150 * channels); half of the budget goes to each. ONNX Runtime runs whole tiles.
_TRUNK_BYTES_PER_LR_PIXEL_PER_CHANNEL = 16
_OUTPUT_BYTES_PER_LR_PIXEL = 400
_RECONSTRUCT_BYTES_PER_LR_PIXEL_PER_CHANNEL = 150
CPU_BUDGET_MB = 1536  # default memory budget for a tile's forward pass on the CPU
# Images narrower than this run edge-extended by SMALL_MARGIN pixels: the network's zero
# padding would otherwise reach all of them (a flat 1x1 came out grey whatever its colour,
# 4x4 off by up to 50 levels; edge-extended, both within 7 of a large image's interior).
# From MIN_SIDE up, results equal a whole-image pass, as tests/test_inference.py checks.
MIN_SIDE, SMALL_MARGIN = 8, 16


def _count(value: Any, name: str, minimum: int, unit: str = "") -> int:
    """A whole-number argument, checked: inf, nan, 2.5, True or "64" is a ValueError naming
    it (a tile of inf used to end in ZeroDivisionError at upscale time); 64.0 is 64."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}{unit}, "
                         f"got {value!r}")
    return int(value)


def _cpu_budget_mb() -> int:
    """1.5 GB (measured peak ~1 GB for the paper network; bigger tiles waste less work on
    context: 960x540 runs 1.3x faster than with 768 MB), at most an eighth of the RAM."""
    try:
        ram_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return CPU_BUDGET_MB
    return int(max(256, min(CPU_BUDGET_MB, ram_mb // 8)))


class Upscaler:
    """Super-resolve images with a generator. Accepts and returns PIL images, NumPy arrays
    (HxW or HxWxC, uint8/uint16/float in [0,1]; other dtypes are refused), float tensors
    (CxHxW or BxCxHxW in [0,1]) and `ImageData`; the output is of the same kind.

    `precision`: see `srgan.precision` (auto runs 16-bit images in fp32 on the CPU, where it
    would otherwise pick the bf16 mix).

    `batch`: tiles per forward pass (default: as many as the memory budget holds).
    `compile`: torch.compile the network (CUDA; pays off over many images of one size).
    `backend`: "torch", or "onnxruntime" (CPU only; the exported ONNX graph).
    The caller's `net` is not modified: a fused copy runs.
    """

    def __init__(
        self,
        net: SRResNet,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget_mb: int | None = None,
        *,
        batch: int | None = None,
        compile: bool = False,
        backend: str = "torch",
    ) -> None:
        self.device = pick_device(device)
        self.precision = precision
        self.dtype = pick_dtype(precision, self.device)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "onnxruntime" and self.device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on the CPU; use device='cpu'")
        batch = None if batch is None else _count(batch, "batch", 1)
        tile_pad = _count(tile_pad, "tile_pad", 0)
        tile = None if tile is None else _count(tile, "tile", 8, " pixels")
        if memory_budget_mb is not None:
            memory_budget_mb = _count(memory_budget_mb, "memory_budget_mb", 1)
        self.net = net
        self.scale = net.scale
        self.tile_pad = tile_pad
        self.backend = backend
        self.batch = batch
        self.compile = compile and backend == "torch"
        self.budget_mb = self._budget_mb(memory_budget_mb)  # for one forward pass
        budget = self.budget_mb * 2**20
        window_budget = budget if backend == "onnxruntime" else budget // 2
        # LR pixels per forward pass (all tiles of a batch), and per chunk of x2/x4 stages
        self.budget_px = max(1, int(window_budget // self._bytes_per_lr_pixel()))
        chunk_px = max(1, int((budget - window_budget) // self._bytes_per_lr_pixel(True)))
        self.tile = tile if tile is not None else self._auto_tile()
        self.spill_bytes: int | None = DEFAULT_SPILL_BYTES
        self.fp32_fallbacks = 0  # tiles redone in fp32 after non-finite half-precision output
        self._ort = None
        self._fn_half = None
        if backend == "onnxruntime":
            from srgan.export import onnxruntime_session

            self._ort = onnxruntime_session(net)
            self._fn32 = self._ort_forward
        else:
            self._fn32 = inference_model(net, torch.float32, chunk_px=chunk_px).to(self.device)
            if self.dtype != torch.float32:
                cpu = self.device.type == "cpu"  # bf16 there: fuse.CpuBf16SRResNet's mix
                self._fn_half = inference_model(net, self.dtype, cpu_mix=cpu,
                                                chunk_px=chunk_px * (1 if cpu else 2)
                                                ).to(self.device)
            if self.compile:
                self._fn32 = torch.compile(self._fn32)
                if self._fn_half is not None:
                    self._fn_half = torch.compile(self._fn_half)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # tile shapes repeat: tuned kernels pay

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget_mb: int | None = None,
        denoise: float | None = None,
        **options: Any,
    ) -> Upscaler:
        """Load a shipped model by name (see `srgan models`) or a .safetensors model file;
        `options`: batch, compile, backend (see the class).

        `denoise` (0 to 1) blends the weights of srresnet_x4 (0: keeps fine texture, and the
        noise) and srresnet_real_x4 (1: removes noise, JPEG blocks and blur); the model must
        then be one of the two or left at its default."""
        if denoise is None:
            return cls(load_generator(name_or_path), device, precision, tile, tile_pad,
                       memory_budget_mb, **options)
        return cls(denoise_generator(name_or_path, denoise), device, precision, tile,
                   tile_pad, memory_budget_mb, **options)

    # ----------------------------------------------------------------- sizing
    def _budget_mb(self, budget_mb: int | None) -> int:
        if budget_mb is not None:
            return budget_mb
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free / 2**20 * 0.5)
        return _cpu_budget_mb()

    def _bytes_per_lr_pixel(self, reconstruct: bool = False) -> int:
        """Peak bytes per LR pixel: of a tile's forward pass, or (`reconstruct`) of a chunk
        of the x2/x4 stages, in float32 (activations are half that in fp16/bf16)."""
        ch = self.net.channels
        if reconstruct:
            return _RECONSTRUCT_BYTES_PER_LR_PIXEL_PER_CHANNEL * ch
        if self.backend == "onnxruntime":  # whole network per tile
            return (_TRUNK_BYTES_PER_LR_PIXEL_PER_CHANNEL
                    + _RECONSTRUCT_BYTES_PER_LR_PIXEL_PER_CHANNEL) * ch
        trunk = _TRUNK_BYTES_PER_LR_PIXEL_PER_CHANNEL * ch
        half = self.dtype != torch.float32 and self.device.type != "cpu"  # CPU mix: fp32 stream
        return (trunk // 2 if half else trunk) + _OUTPUT_BYTES_PER_LR_PIXEL

    def _auto_tile(self) -> int:
        """Largest square LR tile (plus its context) that one forward pass can hold."""
        side = int(math.sqrt(self.budget_px)) - 2 * self.tile_pad
        return int(max(64, min(side, 2048)) // 8 * 8)

    # ----------------------------------------------------------------- core
    def _ort_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.float().numpy())
        return torch.from_numpy(self._ort.run(None, {"image": x})[0])

    def _net(self, x: torch.Tensor, half: bool) -> torch.Tensor:
        """Network on one device batch in [0,1] -> float32 in [0,1] (unclamped)."""
        if half:
            return self._fn_half(x).float()  # casts its input itself
        return self._fn32(x).float()

    def _run(self, x: torch.Tensor, tta: bool, half: bool) -> torch.Tensor:
        fn = partial(self._net, half=half)
        return tta_forward(fn, x) if tta else fn(x)

    def _device_batch(self, x: torch.Tensor, tiles: list[Tile], size: int) -> torch.Tensor:
        """The windows of `tiles` in the CPU image x (B,3,H,W), stacked, on the device, as
        float32 in [0, 1]; padded with zeros to `size` tiles when compiled (one shape, no
        recompiles). Integer images travel as integers (a quarter of the bytes to copy) and
        become floats on the device, exactly as `imageio` converts them."""
        parts = [x[:, :, t.py0:t.py1, t.px0:t.px1] for t in tiles]
        if self.compile and len(tiles) < size:
            parts.append(x.new_zeros((size - len(tiles)) * x.shape[0], *parts[0].shape[1:]))
        xb = torch.cat(parts)
        if self.device.type == "cuda":
            xb = xb.pin_memory().to(self.device, non_blocking=True)
        elif self.device.type != "cpu":
            xb = xb.to(self.device)
        if not xb.is_floating_point():
            top = 255 if xb.dtype == torch.uint8 else 65535
            xb = xb.to(torch.float32).div_(top)
        if self.backend == "onnxruntime":
            return xb
        return xb.contiguous(memory_format=torch.channels_last)

    def _submit(self, xb: torch.Tensor, tta: bool, post: Callable, half: bool) -> Pending:
        """Queue one batch: forward, finiteness flag, post-processing, copy to the host."""
        y = self._run(xb, tta, half)
        finite = torch.isfinite(y).all()
        z = post(y)
        if self.device.type == "cuda":
            host = torch.empty(z.shape, dtype=z.dtype, pin_memory=True)
            host.copy_(z, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            return Pending(xb, host, done, finite, half)
        return Pending(xb, z.cpu(), None, finite, half)

    def _collect(self, p: Pending, tta: bool, post: Callable, n_tiles: int
                 ) -> tuple[torch.Tensor, bool]:
        """Wait for a batch; redo it in fp32 if half precision overflowed. Also returns whether
        the (final) output was finite: fp32 NaN means a broken model, not an overflow."""
        if p.done is not None:
            p.done.synchronize()
        if p.finite is not None and not bool(p.finite):
            if not p.half:
                return p.host, False
            self.fp32_fallbacks += n_tiles  # fp16 overflow: redo in fp32
            y = self._run(p.x, tta, False)
            return post(y).cpu(), bool(torch.isfinite(y).all())
        return p.host, True

    def batch_size(self, batch: int, height: int, width: int) -> int:
        """Tiles per forward pass for a (batch, 3, height, width) input."""
        t = plan_tiles(height, width, self.tile, self.tile_pad, uniform=True)
        if self.batch is not None:
            return min(self.batch, len(t))
        window = (t[0].py1 - t[0].py0) * (t[0].px1 - t[0].px0) * batch
        return max(1, min(len(t), self.budget_px // window))

    @torch.inference_mode()
    def _tiled(self, x: torch.Tensor, tta: bool, progress: Any | None, post: Callable,
               sink: Callable[[Tile, torch.Tensor], None], half: bool) -> None:
        """Run every tile of x (B,3,H,W on the CPU: float32 in [0, 1], or uint8/uint16 pixel
        values, which are converted a batch at a time) through the network, several per
        batch; `post` turns a device batch (N,3,sh,sw) into what is kept, (N,sh,sw,C);
        `sink(tile, part)` stores a tile's (B, h*s, w*s, C) part on the host. While one
        batch computes on an accelerator, the previous one is collected and stored. `half`:
        run in the half-precision model (`runs_half`), else in fp32."""
        b, _, h, w = x.shape
        s = self.scale
        check_size(h, w)
        if min(h, w) < MIN_SIDE:
            self._tiled_small(x, tta, progress, post, sink, half)
            return
        tiles = plan_tiles(h, w, self.tile, self.tile_pad, uniform=True)
        per = self.batch_size(b, h, w)
        pending: tuple[list[Tile], Pending] | None = None
        bad = 0

        def finish(group: list[Tile], p: Pending) -> None:
            nonlocal bad
            out, finite = self._collect(p, tta, post, len(group))
            bad += 0 if finite else len(group)
            for k, t in enumerate(group):
                oy, ox = (t.y0 - t.py0) * s, (t.x0 - t.px0) * s
                sink(t, out[k * b:(k + 1) * b, oy:oy + (t.y1 - t.y0) * s,
                            ox:ox + (t.x1 - t.x0) * s])
            if progress is not None:
                progress(len(group))

        for i in range(0, len(tiles), per):
            group = tiles[i:i + per]
            p = self._submit(self._device_batch(x, group, per), tta, post, half)
            if self.device.type == "cpu":  # computed already: nothing to overlap, so the
                finish(group, p)  # progress callback hears of each batch as it is done
                continue
            if pending is not None:
                finish(*pending)
            pending = (group, p)
        if pending is not None:
            finish(*pending)
        if bad == len(tiles):
            raise NonFiniteOutputError(
                "the model gave NaN or infinite values for every pixel (a broken model file: "
                "NaN weights, or an output_range that overflows)")
        if bad:
            warnings.warn(f"{bad} of {len(tiles)} tiles came out NaN or infinite "
                          "(black in the result)", stacklevel=3)

    def _tiled_small(self, x: torch.Tensor, tta: bool, progress: Any | None, post: Callable,
                     sink: Callable[[Tile, torch.Tensor], None], half: bool) -> None:
        """An image under MIN_SIDE pixels on a side: the network's zero padding would reach
        every pixel and wash the colours out (a 1x1 image came out grey), so it runs on the
        image extended by edge replication, and the part that is the image is kept."""
        b, _, h, w = x.shape
        s, m = self.scale, SMALL_MARGIN
        if not x.is_floating_point():
            x = x.to(torch.float32) / (255 if x.dtype == torch.uint8 else 65535)
        xp = nn.functional.pad(x.float(), (m, m, m, m), mode="replicate")

        def crop(t: Tile, part: torch.Tensor) -> None:
            y0, y1 = max(t.y0, m), min(t.y1, m + h)
            x0, x1 = max(t.x0, m), min(t.x1, m + w)
            if y0 < y1 and x0 < x1:
                sink(Tile(y0 - m, y1 - m, x0 - m, x1 - m, 0, h, 0, w),
                     part[:, (y0 - t.y0) * s:(y1 - t.y0) * s, (x0 - t.x0) * s:(x1 - t.x0) * s])

        self._tiled(xp, tta, progress, post, crop, half)

    def iter_tiles(self, height: int, width: int) -> list[Tile]:
        return plan_tiles(height, width, self.tile, self.tile_pad, uniform=True)

    def _upscale_nhwc(self, x: torch.Tensor, tta: bool, progress: Any | None) -> torch.Tensor:
        """(B,3,H,W) float -> (B, sH, sW, 3) float32 on the CPU, clamped to [0, 1]."""
        x = x.float().cpu().contiguous()
        b, _, h, w = x.shape
        s = self.scale
        out = torch.empty(b, h * s, w * s, 3, dtype=torch.float32)

        def sink(t: Tile, part: torch.Tensor) -> None:
            out[:, t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s] = part

        self._tiled(x, tta, progress, post_float, sink, self.runs_half())
        return out

    def upscale_tensor(
        self, x: torch.Tensor, tta: bool = False, progress: Any | None = None
    ) -> torch.Tensor:
        """(B,3,H,W) or (3,H,W) float in [0,1] on any device -> same layout, x`scale`, on the
        CPU, clamped to [0,1]. Tiles larger images; `progress(n)` is called as tiles finish."""
        if not x.is_floating_point():
            raise TypeError(f"tensors must be float in [0, 1], got {x.dtype}")
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) or (3,H,W) tensor, got {tuple(x.shape)}")
        out = self._upscale_nhwc(x, tta, progress).permute(0, 3, 1, 2).contiguous()
        return out[0] if squeeze else out

    def upscale_pixels(self, pixels: np.ndarray, tta: bool = False, progress: Any | None = None,
                       *, bits: int = 8, out_bits: int | None = None,
                       spill_dir: str | Path | None = None) -> np.ndarray:
        """HxW or HxWxC (C 1..4) pixels (uint8, uint16 or float32 in [0, 1]; unchecked: see
        `upscale_array`) of a `bits`-deep image -> (sH)x(sW)xC: float32 in [0, 1], or with
        `out_bits` (8 or 16) uint8/uint16 rounded tile by tile on the device, into a
        memory-mapped file in `spill_dir` when huge. Grey and alpha: `inference.planes`."""
        planes = split_planes(pixels)
        h, w, cc = *planes.colour.shape[:2], planes.colour_channels
        s = self.scale
        if out_bits is None:
            dtype, top, spill = np.dtype(np.float32), 1.0, None
            def post(y: torch.Tensor, grey: bool) -> torch.Tensor:
                y = post_float(y)
                return y.mean(3, keepdim=True) if grey else y
        else:
            dtype = np.dtype(np.uint8 if out_bits == 8 else np.uint16)
            top, spill = np.iinfo(dtype).max, self.spill_bytes
            def post(y: torch.Tensor, grey: bool) -> torch.Tensor:
                return quantize(y.mean(1, keepdim=True) if grey else y, out_bits)
        out = output_buffer((h * s, w * s, planes.channels), dtype, spill, spill_dir)
        half = self.runs_half(bits)

        def sink_to(channel: slice) -> Callable[[Tile, torch.Tensor], None]:
            def sink(t: Tile, part: torch.Tensor) -> None:
                out[t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s, channel] = part[0].numpy()
            return sink

        self._tiled(planes.colour_tensor(), tta, progress, partial(post, grey=planes.grey),
                    sink_to(slice(0, cc)), half)
        if planes.alpha is not None:
            if planes.opaque:
                out[:, :, cc] = top
            else:
                self._tiled(planes.alpha_tensor(), tta, progress, partial(post, grey=True),
                            sink_to(slice(cc, cc + 1)), half)
                pin_alpha(out[:, :, cc], planes.alpha)
        return out

    def runs_half(self, bits: int = 8) -> bool:
        """Whether an image of `bits` per channel runs in half precision (precision.py's
        rule: `auto` keeps 16-bit images off bf16)."""
        return self._fn_half is not None and image_dtype(self.precision, self.dtype,
                                                         bits) == self.dtype

    def upscale_quantized(
        self,
        data: ImageData | QuantizedImage,
        tta: bool = False,
        progress: Any | None = None,
        bits: int | None = None,
        spill_dir: str | Path | None = None,
    ) -> QuantizedImage:
        """Like `upscale_image`, but each tile is rounded on the device and written straight
        into a uint8/uint16 output (`bits`, default the source's depth): no float copy of the
        output ever exists, so memory is the tile budget plus the output's own bytes. Pixels
        equal `to_array(upscale_image(data), ...)` up to float rounding (at most one level).

        A QuantizedImage input (`imageio.read_quantized`) stays integers too and is converted
        a batch of tiles at a time, so a huge input costs its file's bytes, not 4x that;
        the result is identical to that of the same image as ImageData."""
        bits = bits or data.bit_depth
        if bits not in (8, 16):
            raise ValueError(f"bits must be 8 or 16, got {bits}")
        out = self.upscale_pixels(data.pixels, tta, progress, bits=data.bit_depth,
                                  out_bits=bits, spill_dir=spill_dir)
        return QuantizedImage(out, bits, data.icc_profile, data.exif, data.source_format,
                              list(data.warnings), data.path)

    def tiles_for(self, height: int, width: int, channels: int = 3) -> int:
        """How many tiles an image needs (for progress bars)."""
        n = len(self.iter_tiles(height, width))
        return n * (2 if channels in (2, 4) else 1)

    # ------------------------------------------------- adapters (srgan.inference.adapters)
    def upscale_array(
        self, pixels: np.ndarray, tta: bool = False, progress: Any | None = None
    ) -> np.ndarray:
        """HxW or HxWxC (C 1..4) uint8, uint16 or float in [0, 1] -> (sH)x(sW)xC float32 in
        [0, 1]; other dtypes are refused (TypeError), floats outside [0, 1] too."""
        return adapters.upscale_array(self, pixels, tta, progress)

    def upscale_image(self, data: ImageData, outscale: float | None = None, tta: bool = False,
                      progress: Any | None = None) -> ImageData:
        """Upscale decoded image data, keeping its mode, bit depth, ICC profile and EXIF."""
        return adapters.upscale_image(self, data, outscale, tta, progress)

    def upscale(self, image: Any, outscale: float | None = None, tta: bool = False) -> Any:
        """Upscale a PIL image, a NumPy array, a tensor or ImageData; returns the same kind."""
        return adapters.upscale_any(self, image, outscale, tta)
