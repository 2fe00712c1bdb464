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
  temporary file for huge ones): peak memory is the tile budget plus the output's own bytes;
* `overlapped` decodes the next file and encodes the previous one in threads while the
  current one computes (the CLI's folder mode).
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from srgan.fuse import inference_model
from srgan.imageio import (
    ImageData,
    QuantizedImage,
    from_array,
    from_pil,
    to_array,
    to_pil,
)
from srgan.nets import SRResNet
from srgan.precision import PRECISIONS, pick_dtype  # noqa: F401 (re-exported)
from srgan.quantize import quantize_tensor, to_float
from srgan.weights import load_generator

BACKENDS = ("torch", "onnxruntime")
DEFAULT_TILE_PAD = 24  # LR pixels of context around each tile; see tests/test_inference.py
# Peak bytes per LR pixel of a forward pass in float32 (measured on the CPU for 64 channels:
# ~1 KB trunk, ~9.5 KB whole network). The fast model runs a tile's trunk at once
# (16 * channels, plus ~400 for its output and the copies made of it) and the x2/x4 stages in
# chunks (150 * channels); half of the budget goes to each. ONNX Runtime runs whole tiles.
_TRUNK_BYTES_PER_LR_PIXEL_PER_CHANNEL = 16
_OUTPUT_BYTES_PER_LR_PIXEL = 400
_RECONSTRUCT_BYTES_PER_LR_PIXEL_PER_CHANNEL = 150
# Quantised outputs larger than this live in a memory-mapped temporary file, not in RAM.
DEFAULT_SPILL_BYTES = 2 << 30
CPU_BUDGET_MB = 1536  # default memory budget for a tile's forward pass on the CPU
# Images narrower than this run edge-extended by SMALL_MARGIN pixels: the network's zero
# padding would otherwise reach all of them (a flat 1x1 came out grey whatever its colour,
# 4x4 off by up to 50 levels; edge-extended, both within 7 of a large image's interior).
# From MIN_SIDE up, results equal a whole-image pass, as tests/test_inference.py checks.
MIN_SIDE, SMALL_MARGIN = 8, 16


def _cpu_budget_mb() -> int:
    """1.5 GB (measured peak ~1 GB for the paper network; bigger tiles waste less work on
    context: 960x540 runs 1.3x faster than with 768 MB), at most an eighth of the RAM."""
    try:
        ram_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return CPU_BUDGET_MB
    return int(max(256, min(CPU_BUDGET_MB, ram_mb // 8)))


def pick_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r} is not a device name (auto, cpu, cuda, cuda:1, "
                         "mps ...)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch is built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible (driver or CUDA_VISIBLE_DEVICES?)")
            raise ValueError(f"--device {device}: {why}; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                             "device(s) here")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                    and torch.backends.mps.is_available()):
        raise ValueError(f"--device {device}: MPS is not available here; use --device cpu")
    return dev


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


def _splits(n: int, parts: int) -> list[int]:
    # even split: tiles of near-equal size rather than a thin last one
    return [round(i * n / parts) for i in range(parts + 1)]


def plan_tiles(height: int, width: int, tile: int, pad: int, uniform: bool = False) -> list[Tile]:
    """Split an image into tiles of at most `tile` pixels a side, each read with `pad` context.

    `uniform`: every tile reads a window of the same size (so tiles can be batched), at
    least `pad` pixels of context wherever the image has them: windows at the borders are
    shifted inwards and read more real context instead of padding. Where a window would
    span the whole image, one tile does instead of several identical windows.
    """
    ny, nx = math.ceil(height / tile), math.ceil(width / tile)
    if uniform:  # a window that spans the image anyway needs only one tile across it
        ny = 1 if math.ceil(height / ny) + 2 * pad >= height else ny
        nx = 1 if math.ceil(width / nx) + 2 * pad >= width else nx
    ys, xs = _splits(height, ny), _splits(width, nx)
    wy = min(max(b - a for a, b in zip(ys, ys[1:], strict=False)) + 2 * pad, height)
    wx = min(max(b - a for a, b in zip(xs, xs[1:], strict=False)) + 2 * pad, width)
    tiles = []
    for i in range(ny):
        for j in range(nx):
            y0, y1, x0, x1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
            if uniform:
                py0 = min(max(0, y0 - pad), height - wy)
                px0 = min(max(0, x0 - pad), width - wx)
                tiles.append(Tile(y0, y1, x0, x1, py0, py0 + wy, px0, px0 + wx))
            else:
                tiles.append(Tile(y0, y1, x0, x1, max(0, y0 - pad), min(height, y1 + pad),
                                  max(0, x0 - pad), min(width, x1 + pad)))
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


def _post_float(y: torch.Tensor) -> torch.Tensor:
    """Device output (N,3,h,w) -> clamped float (N,h,w,3)."""
    return y.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def quantize(y: torch.Tensor, bits: int) -> torch.Tensor:
    """(N,C,h,w) float in [0,1] -> (N,h,w,C) uint8 (8 bits) or int32 (16 bits): the rounding
    of `srgan.imageio` (`srgan.quantize`), on the device, so only the bytes of the result
    cross to the host."""
    return quantize_tensor(y, bits).permute(0, 2, 3, 1).contiguous()


@dataclass
class _Pending:
    """A batch in flight: its device input (kept for an fp32 redo), the host tensor its result
    is copied into, the event that says the copy is done, and whether it was finite."""

    x: torch.Tensor
    host: torch.Tensor
    done: Any
    finite: torch.Tensor | None


def output_buffer(shape: tuple[int, ...], dtype: Any, spill_bytes: int | None = DEFAULT_SPILL_BYTES,
                  spill_dir: str | Path | None = None) -> np.ndarray:
    """An uninitialised array; above `spill_bytes` a np.memmap on an already-unlinked
    temporary file in `spill_dir`, so the OS can page a huge output out instead of failing."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if spill_bytes is None or nbytes <= spill_bytes:
        return np.empty(shape, dtype)
    with tempfile.TemporaryFile(prefix=".srgan-", suffix=".tmp", dir=spill_dir) as fh:
        return np.memmap(fh, dtype=dtype, mode="w+", shape=shape)  # the map keeps the file


class NonFiniteOutputError(ValueError):
    """The network gave no usable pixel (NaN / infinity everywhere): the model is broken."""


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"cannot upscale an empty image ({width}x{height} pixels)")


class Upscaler:
    """Super-resolve images with a generator. Accepts and returns PIL images, NumPy arrays
    (HxW or HxWxC, uint8/uint16/float in [0,1]), float tensors (CxHxW or BxCxHxW in [0,1])
    and `ImageData`; the output is of the same kind.

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
        self.dtype = pick_dtype(precision, self.device)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "onnxruntime" and self.device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on the CPU; use device='cpu'")
        if batch is not None and batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if tile_pad < 0:
            raise ValueError(f"tile_pad must be 0 or more, got {tile_pad}")
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
        if self.tile < 8:
            raise ValueError(f"tile must be at least 8 pixels, got {self.tile}")
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
        name_or_path: str | Path = "srresnet_x4",
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget_mb: int | None = None,
        **options: Any,
    ) -> Upscaler:
        """Load a shipped model by name (see `srgan models`) or a .safetensors model file;
        `options`: batch, compile, backend (see the class)."""
        return cls(load_generator(name_or_path), device, precision, tile, tile_pad,
                   memory_budget_mb, **options)

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
        return _tta_forward(fn, x) if tta else fn(x)

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

    def _submit(self, xb: torch.Tensor, tta: bool, post: Callable) -> _Pending:
        """Queue one batch: forward, finiteness flag, post-processing, copy to the host."""
        half = self._fn_half is not None
        y = self._run(xb, tta, half)
        finite = torch.isfinite(y).all()
        z = post(y)
        if self.device.type == "cuda":
            host = torch.empty(z.shape, dtype=z.dtype, pin_memory=True)
            host.copy_(z, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            return _Pending(xb, host, done, finite)
        return _Pending(xb, z.cpu(), None, finite)

    def _collect(self, p: _Pending, tta: bool, post: Callable, n_tiles: int
                 ) -> tuple[torch.Tensor, bool]:
        """Wait for a batch; redo it in fp32 if half precision overflowed. Also returns whether
        the (final) output was finite: fp32 NaN means a broken model, not an overflow."""
        if p.done is not None:
            p.done.synchronize()
        if p.finite is not None and not bool(p.finite):
            if self._fn_half is None:
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
               sink: Callable[[Tile, torch.Tensor], None]) -> None:
        """Run every tile of x (B,3,H,W on the CPU: float32 in [0, 1], or uint8/uint16 pixel
        values, which are converted a batch at a time) through the network, several per
        batch; `post` turns a device batch (N,3,sh,sw) into what is kept, (N,sh,sw,C);
        `sink(tile, part)` stores a tile's (B, h*s, w*s, C) part on the host. While one
        batch computes on an accelerator, the previous one is collected and stored."""
        b, _, h, w = x.shape
        s = self.scale
        _check_size(h, w)
        if min(h, w) < MIN_SIDE:
            self._tiled_small(x, tta, progress, post, sink)
            return
        tiles = plan_tiles(h, w, self.tile, self.tile_pad, uniform=True)
        per = self.batch_size(b, h, w)
        pending: tuple[list[Tile], _Pending] | None = None
        bad = 0

        def finish(group: list[Tile], p: _Pending) -> None:
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
            p = self._submit(self._device_batch(x, group, per), tta, post)
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
                     sink: Callable[[Tile, torch.Tensor], None]) -> None:
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

        self._tiled(xp, tta, progress, post, crop)

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

        self._tiled(x, tta, progress, _post_float, sink)
        return out

    def upscale_tensor(
        self, x: torch.Tensor, tta: bool = False, progress: Any | None = None
    ) -> torch.Tensor:
        """(B,3,H,W) or (3,H,W) float in [0,1] on any device -> same layout, x`scale`, on the
        CPU, clamped to [0,1]. Tiles larger images; `progress(n)` is called as tiles finish."""
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) or (3,H,W) tensor, got {tuple(x.shape)}")
        out = self._upscale_nhwc(x, tta, progress).permute(0, 3, 1, 2).contiguous()
        return out[0] if squeeze else out

    @staticmethod
    def _split(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """Colour (HxWx1 or HxWx3) with transparent pixels' colour filled in, alpha, and whether
        the alpha is fully opaque (or absent). Float pixels are in [0, 1]; integer ones stay
        integers unless something is transparent: filling needs floats, so then both come
        back as float32 in [0, 1], converted as imageio does."""
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        _check_size(pixels.shape[0], pixels.shape[1])
        c = pixels.shape[2]
        if c not in (1, 2, 3, 4):
            raise ValueError(f"expected 1 to 4 channels, got {c}")
        if c not in (2, 4):
            return pixels, None, True
        colour, alpha = pixels[..., :-1], pixels[..., -1]
        integer = pixels.dtype.kind in "ui"
        if alpha.min() >= (np.iinfo(alpha.dtype).max if integer else 1.0):
            return colour, alpha, True
        if integer:
            bits = 8 if pixels.dtype == np.uint8 else 16
            colour, alpha = to_float(colour, bits), to_float(alpha, bits)
        return fill_transparent(colour, alpha), alpha, False

    @staticmethod
    def _rgb_tensor(colour: np.ndarray) -> torch.Tensor:
        """HxWx1 or HxWx3 -> 3xHxW: float32 (converted if need be), or the integers as they
        are without a copy; grey becomes a broadcast view, not three copies."""
        if colour.dtype.kind == "f":
            colour = np.ascontiguousarray(colour, dtype=np.float32)
        t = _readonly_view(colour).permute(2, 0, 1)
        return t.expand(3, *t.shape[1:]) if t.shape[0] == 1 else t

    def upscale_array(
        self, pixels: np.ndarray, tta: bool = False, progress: Any | None = None
    ) -> np.ndarray:
        """HxWxC float32 in [0,1], C in 1..4 -> (sH)x(sW)xC float32 in [0,1].

        Grey is replicated to RGB and averaged back. Alpha is upscaled by the model too
        (as grey), after transparent pixels' colours are filled in from their opaque
        neighbours, so no black or stale colour bleeds into edges.
        """
        colour, alpha, opaque = self._split(pixels)
        grey = colour.shape[2] == 1
        y = self._upscale_nhwc(self._rgb_tensor(colour)[None], tta, progress)[0]
        y = y.mean(dim=2, keepdim=True) if grey else y
        parts = [y]
        if alpha is not None:
            if opaque:
                a = torch.ones(y.shape[0], y.shape[1], 1)
            else:
                at = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))
                a = self._upscale_nhwc(at.expand(1, 3, *at.shape), tta, progress)[0]
                a = a.mean(2, keepdim=True)
                pin_alpha(a.numpy()[:, :, 0], alpha)
            parts.append(a)
        return torch.cat(parts, dim=2).numpy() if len(parts) > 1 else y.numpy()

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
        colour, alpha, opaque = self._split(data.pixels)
        h, w = data.height, data.width
        s, cc = self.scale, colour.shape[2]
        dtype = np.uint8 if bits == 8 else np.uint16
        out = output_buffer((h * s, w * s, cc + (alpha is not None)), dtype, self.spill_bytes,
                            spill_dir)

        def sink_to(channel: slice) -> Callable[[Tile, torch.Tensor], None]:
            def sink(t: Tile, part: torch.Tensor) -> None:
                out[t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s, channel] = part[0].numpy()
            return sink

        def post(y: torch.Tensor, grey: bool) -> torch.Tensor:
            return quantize(y.mean(1, keepdim=True) if grey else y, bits)

        self._tiled(self._rgb_tensor(colour)[None], tta, progress,
                    partial(post, grey=cc == 1), sink_to(slice(0, cc)))
        if alpha is not None:
            if opaque:
                out[:, :, cc] = np.iinfo(dtype).max
            else:
                at = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))
                self._tiled(at.expand(1, 3, *at.shape), tta, progress, partial(post, grey=True),
                            sink_to(slice(cc, cc + 1)))
                pin_alpha(out[:, :, cc], alpha)
        return QuantizedImage(out, bits, data.icc_profile, data.exif, data.source_format,
                              list(data.warnings), data.path)

    def tiles_for(self, height: int, width: int, channels: int = 3) -> int:
        """How many tiles an image needs (for progress bars)."""
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
            if data.has_alpha:  # the resize rings again around transparent areas
                pin_alpha(out[:, :, -1], data.pixels[:, :, -1])
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




# --------------------------------------------------------------------------- folders
Item = TypeVar("Item")


def overlapped(
    items: Iterable[Item],
    load: Callable[[Item], Any],
    compute: Callable[[Item, Any], Any],
    save: Callable[[Item, Any], Any],
    depth: int = 1,
) -> Iterator[tuple[Item, BaseException | None]]:
    """For each item, in order: `load(item)` in a worker thread (`depth` items ahead), then
    `compute(item, loaded)` in the calling thread (the device work), then `save(item,
    result)` in a worker thread while the next items compute (up to `depth` saves pending).
    Yields (item, None) once an item is saved, or (item, the exception) if a step failed:
    that item's later steps are skipped, the other items go on. Yields come in order; at
    most 2 * depth + 1 items are held at once."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=2 * depth, thread_name_prefix="srgan-io") as pool:
        loads: deque[Future] = deque(pool.submit(load, it) for it in items[:depth])
        saving: deque[tuple[Item, Future | None, BaseException | None]] = deque()

        def finished(entry: tuple[Item, Future | None, BaseException | None]):
            item, fut, error = entry
            if fut is not None:
                try:
                    fut.result()
                except Exception as exc:  # reported per item, like a failed load
                    error = exc
            return item, error

        for i, item in enumerate(items):
            fut = loads.popleft()
            if i + depth < len(items):
                loads.append(pool.submit(load, items[i + depth]))
            error: BaseException | None = None
            result = None
            try:
                result = compute(item, fut.result())
            except Exception as exc:
                error = exc
            fut = None  # drop the decoded input before the next one is computed
            saving.append((item, pool.submit(save, item, result) if error is None else None,
                           error))
            result = None
            while len(saving) > depth:
                yield finished(saving.popleft())
        while saving:
            yield finished(saving.popleft())


def io_depth(device: torch.device) -> int:
    """Files decoded ahead / encoded behind in folder mode: one on a CPU (its cores run the
    network), more on an accelerator, where PNG encoding would otherwise be the bottleneck."""
    if device.type == "cpu":
        return 1
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def resize_to(pixels: np.ndarray, height: int, width: int, outscale: float) -> np.ndarray:
    """Resize an upscaled HxWxC float image to round(outscale * input size), MATLAB bicubic."""
    from srgan.resize import imresize

    if not 0 < outscale <= 64:
        raise ValueError(f"outscale must be in (0, 64], got {outscale}")
    size = (max(1, round(height * outscale)), max(1, round(width * outscale)))
    t = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
    return imresize(t, size=size).clamp_(0, 1).permute(1, 2, 0).contiguous().numpy()


def _readonly_view(arr: np.ndarray) -> torch.Tensor:
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

