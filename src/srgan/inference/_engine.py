"""The tile engine behind `Upscaler`: a generator run over images of any size, tile by tile.

The image stays on the CPU; only tiles (with enough context around them that the result
equals a whole-image pass) travel to the device. The fast path (benchmarks/infer_throughput.py
measures it against a naive baseline):

* the network runs as `srgan.fuse.inference_model`: BatchNorm folded into the convolutions,
  the output range folded into the last one, channels_last; fp16 on GPUs, a bf16 mix on
  CPUs with native bf16 (`srgan.precision`), fp32 on other CPUs;
* all tiles of an image read windows of one size (shifted inwards at the borders, so they
  read real pixels, never padding), so several tiles go through the network in one batch;
* on CUDA, batches travel through pinned memory with asynchronous copies, and one batch's
  result is collected while the next one computes;
* `run_pixels` with `out_bits` writes each tile straight into a uint8/uint16 image (a
  memory-mapped temporary file for huge ones): peak memory is the tile budget plus the
  output's own bytes.

What one call needs on its way through (TTA, progress, post-processing, precision, where a
tile lands) travels as one `Pass`. This module knows nothing of `Upscaler`, the public face.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srgan import fuse
from srgan.inference.batches import (
    NonFiniteOutputError,
    Pending,
    output_buffer,
    post_float,
    quantize_batch,
    tta_forward,
)
from srgan.inference.planes import check_size, pin_alpha, split_planes
from srgan.inference.tiling import Tile, plan_tiles
from srgan.nets import SRResNet
from srgan.precision import image_dtype

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

Sink = Callable[[Tile, torch.Tensor], None]


def _cpu_budget_mb() -> int:
    """1.5 GB (measured peak ~1 GB for the paper network; bigger tiles waste less work on
    context: 960x540 runs 1.3x faster than with 768 MB), at most an eighth of the RAM."""
    try:
        ram_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return CPU_BUDGET_MB
    return int(max(256, min(CPU_BUDGET_MB, ram_mb // 8)))


@dataclass(frozen=True)
class Pass:
    """One upscale call on its way through the engine: the x8 self-ensemble (`tta`), the
    `progress(n_tiles)` callback, `post` (a device batch (N,3,sh,sw) -> what is kept,
    (N,sh,sw,C)), `sink(tile, part)` (stores a tile's (B, h*s, w*s, C) part on the host) and
    whether it runs in the half-precision model."""

    tta: bool = False
    progress: Callable[[int], Any] | None = None
    post: Callable[[torch.Tensor], torch.Tensor] = post_float
    sink: Sink | None = None
    half: bool = False


class TileEngine:
    """The networks (fp32, and half precision where `dtype` asks for it), the memory budget
    and the tile size it implies, and the tiled pass itself. Arguments arrive checked."""

    def __init__(self, net: SRResNet, device: torch.device, precision: str,
                 dtype: torch.dtype, tile: int | None, tile_pad: int,
                 budget_mb: int | None, batch: int | None, compile: bool, backend: str,
                 spill_bytes: int | None) -> None:
        self.net, self.device, self.precision, self.dtype = net, device, precision, dtype
        self.scale, self.tile_pad, self.batch, self.backend = net.scale, tile_pad, batch, backend
        self.compile = compile and backend == "torch"
        self.spill_bytes = spill_bytes
        self.budget_mb = self._budget_mb(budget_mb)  # for one forward pass
        budget = self.budget_mb * 2**20
        window_budget = budget if backend == "onnxruntime" else budget // 2
        # LR pixels per forward pass (all tiles of a batch), and per chunk of x2/x4 stages
        self.budget_px = max(1, int(window_budget // self._bytes_per_lr_pixel()))
        chunk_px = max(1, int((budget - window_budget) // self._bytes_per_lr_pixel(True)))
        self.tile = tile if tile is not None else self._auto_tile()
        self.fp32_fallbacks = 0  # tiles redone in fp32 after non-finite half-precision output
        self._build(chunk_px)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # tile shapes repeat: tuned kernels pay

    def _build(self, chunk_px: int) -> None:
        """The forward functions: ONNX Runtime's session, or the fused torch models."""
        self._ort, self._fn_half = None, None
        if self.backend == "onnxruntime":
            from srgan.export import onnxruntime_session

            self._ort = onnxruntime_session(self.net)
            self._fn32 = self._ort_forward
            return
        self._fn32 = fuse.inference_model(self.net, torch.float32,
                                          chunk_px=chunk_px).to(self.device)
        if self.dtype != torch.float32:
            cpu = self.device.type == "cpu"  # bf16 there: fuse.CpuBf16SRResNet's mix
            self._fn_half = fuse.inference_model(self.net, self.dtype, cpu_mix=cpu,
                                                 chunk_px=chunk_px * (1 if cpu else 2)
                                                 ).to(self.device)
        if self.compile:
            self._fn32 = torch.compile(self._fn32)
            if self._fn_half is not None:
                self._fn_half = torch.compile(self._fn_half)

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

    def iter_tiles(self, height: int, width: int) -> list[Tile]:
        return plan_tiles(height, width, self.tile, self.tile_pad, uniform=True)

    def batch_size(self, batch: int, height: int, width: int) -> int:
        """Tiles per forward pass for a (batch, 3, height, width) input."""
        t = self.iter_tiles(height, width)
        if self.batch is not None:
            return min(self.batch, len(t))
        window = (t[0].py1 - t[0].py0) * (t[0].px1 - t[0].px0) * batch
        return max(1, min(len(t), self.budget_px // window))

    def runs_half(self, bits: int = 8) -> bool:
        """Whether an image of `bits` per channel runs in half precision (precision.py's
        rule: `auto` keeps 16-bit images off bf16)."""
        return self._fn_half is not None and image_dtype(self.precision, self.dtype,
                                                         bits) == self.dtype

    # ----------------------------------------------------------------- one batch
    def _ort_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.float().numpy())
        return torch.from_numpy(self._ort.run(None, {"image": x})[0])

    def _run(self, x: torch.Tensor, p: Pass, half: bool) -> torch.Tensor:
        """Network on one device batch in [0,1] -> float32 in [0,1] (unclamped)."""
        fn = self._fn_half if half else self._fn32  # the half model casts its input itself

        def forward(t: torch.Tensor) -> torch.Tensor:
            return fn(t).float()

        return tta_forward(forward, x) if p.tta else forward(x)

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

    def _submit(self, xb: torch.Tensor, p: Pass) -> Pending:
        """Queue one batch: forward, finiteness flag, post-processing, copy to the host."""
        y = self._run(xb, p, p.half)
        finite = torch.isfinite(y).all()
        z = p.post(y)
        if self.device.type == "cuda":
            host = torch.empty(z.shape, dtype=z.dtype, pin_memory=True)
            host.copy_(z, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            return Pending(xb, host, done, finite, p.half)
        return Pending(xb, z.cpu(), None, finite, p.half)

    def _collect(self, pending: Pending, p: Pass, n_tiles: int) -> tuple[torch.Tensor, bool]:
        """Wait for a batch; redo it in fp32 if half precision overflowed. Also returns whether
        the (final) output was finite: fp32 NaN means a broken model, not an overflow."""
        if pending.done is not None:
            pending.done.synchronize()
        if pending.finite is not None and not bool(pending.finite):
            if not pending.half:
                return pending.host, False
            self.fp32_fallbacks += n_tiles  # fp16 overflow: redo in fp32
            y = self._run(pending.x, p, False)
            return p.post(y).cpu(), bool(torch.isfinite(y).all())
        return pending.host, True

    # ----------------------------------------------------------------- the tiled pass
    @torch.inference_mode()
    def tiled(self, x: torch.Tensor, p: Pass) -> None:
        """Run every tile of x (B,3,H,W on the CPU: float32 in [0, 1], or uint8/uint16 pixel
        values, which are converted a batch at a time) through the network, several per
        batch, into `p.sink`. While one batch computes on an accelerator, the previous one is
        collected and stored."""
        b, _, h, w = x.shape
        s = self.scale
        check_size(h, w)
        if min(h, w) < MIN_SIDE:
            self._tiled_small(x, p)
            return
        tiles = self.iter_tiles(h, w)
        per = self.batch_size(b, h, w)
        pending: tuple[list[Tile], Pending] | None = None
        bad = 0

        def finish(group: list[Tile], done: Pending) -> None:
            nonlocal bad
            out, finite = self._collect(done, p, len(group))
            bad += 0 if finite else len(group)
            for k, t in enumerate(group):
                oy, ox = (t.y0 - t.py0) * s, (t.x0 - t.px0) * s
                p.sink(t, out[k * b:(k + 1) * b, oy:oy + (t.y1 - t.y0) * s,
                              ox:ox + (t.x1 - t.x0) * s])
            if p.progress is not None:
                p.progress(len(group))

        for i in range(0, len(tiles), per):
            group = tiles[i:i + per]
            queued = self._submit(self._device_batch(x, group, per), p)
            if self.device.type == "cpu":  # computed already: nothing to overlap, so the
                finish(group, queued)  # progress callback hears of each batch as it is done
                continue
            if pending is not None:
                finish(*pending)
            pending = (group, queued)
        if pending is not None:
            finish(*pending)
        _check_finite(bad, len(tiles))

    def _tiled_small(self, x: torch.Tensor, p: Pass) -> None:
        """An image under MIN_SIDE pixels on a side: the network's zero padding would reach
        every pixel and wash the colours out (a 1x1 image came out grey), so it runs on the
        image extended by edge replication, and the part that is the image is kept."""
        b, _, h, w = x.shape
        s, m = self.scale, SMALL_MARGIN
        if not x.is_floating_point():
            x = x.to(torch.float32) / (255 if x.dtype == torch.uint8 else 65535)
        xp = nn.functional.pad(x.float(), (m, m, m, m), mode="replicate")
        sink = p.sink

        def crop(t: Tile, part: torch.Tensor) -> None:
            y0, y1 = max(t.y0, m), min(t.y1, m + h)
            x0, x1 = max(t.x0, m), min(t.x1, m + w)
            if y0 < y1 and x0 < x1:
                sink(Tile(y0 - m, y1 - m, x0 - m, x1 - m, 0, h, 0, w),
                     part[:, (y0 - t.y0) * s:(y1 - t.y0) * s, (x0 - t.x0) * s:(x1 - t.x0) * s])

        self.tiled(xp, replace(p, sink=crop))

    # ----------------------------------------------------------------- whole images
    def run_tensor(self, x: torch.Tensor, p: Pass) -> torch.Tensor:
        """(B,3,H,W) float -> (B, sH, sW, 3) float32 on the CPU, clamped to [0, 1]."""
        x = x.float().cpu().contiguous()
        b, _, h, w = x.shape
        s = self.scale
        out = torch.empty(b, h * s, w * s, 3, dtype=torch.float32)

        def sink(t: Tile, part: torch.Tensor) -> None:
            out[:, t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s] = part

        self.tiled(x, replace(p, post=post_float, sink=sink, half=self.runs_half()))
        return out

    def run_pixels(self, pixels: np.ndarray, p: Pass, *, bits: int = 8,
                   out_bits: int | None = None, spill_dir: str | Path | None = None
                   ) -> np.ndarray:
        """HxW or HxWxC (C 1..4) pixels (uint8, uint16 or float32 in [0, 1]; unchecked) of a
        `bits`-deep image -> (sH)x(sW)xC: float32 in [0, 1], or with `out_bits` (8 or 16)
        uint8/uint16 rounded tile by tile on the device, into a memory-mapped file in
        `spill_dir` when huge. Grey and alpha: `inference.planes`."""
        planes = split_planes(pixels)
        h, w, cc = *planes.colour.shape[:2], planes.colour_channels
        s = self.scale
        if out_bits is None:
            dtype, top, spill = np.dtype(np.float32), 1.0, None
        else:
            dtype = np.dtype(np.uint8 if out_bits == 8 else np.uint16)
            top, spill = np.iinfo(dtype).max, self.spill_bytes
        out = output_buffer((h * s, w * s, planes.channels), dtype, spill, spill_dir)

        def sink_to(channel: slice) -> Sink:
            def sink(t: Tile, part: torch.Tensor) -> None:
                out[t.y0 * s:t.y1 * s, t.x0 * s:t.x1 * s, channel] = part[0].numpy()
            return sink

        run = replace(p, half=self.runs_half(bits))
        self.tiled(planes.colour_tensor(), replace(
            run, post=partial(_post, grey=planes.grey, bits=out_bits),
            sink=sink_to(slice(0, cc))))
        if planes.alpha is not None:
            if planes.opaque:
                out[:, :, cc] = top
            else:
                self.tiled(planes.alpha_tensor(), replace(
                    run, post=partial(_post, grey=True, bits=out_bits),
                    sink=sink_to(slice(cc, cc + 1))))
                pin_alpha(out[:, :, cc], planes.alpha)
        return out


def _post(y: torch.Tensor, grey: bool, bits: int | None) -> torch.Tensor:
    """A device batch (N,3,h,w) -> (N,h,w,C): clamped floats, or (`bits`) rounded integers;
    grey keeps the mean of the three channels."""
    if bits is None:
        y = post_float(y)
        return y.mean(3, keepdim=True) if grey else y
    return quantize_batch(y.mean(1, keepdim=True) if grey else y, bits)


def _check_finite(bad: int, total: int) -> None:
    if bad == total:
        raise NonFiniteOutputError(
            "the model gave NaN or infinite values for every pixel (a broken model file: "
            "NaN weights, or an output_range that overflows)")
    if bad:
        warnings.warn(f"{bad} of {total} tiles came out NaN or infinite "
                      "(black in the result)", stacklevel=4)
