"""MATLAB-exact bicubic `imresize` in PyTorch: how LR images and the "bicubic" baseline are made.

The SR literature (and the SRGAN paper) defines its degradation by MATLAB's
`imresize(img, scale, 'bicubic')`, which differs from Pillow and `F.interpolate` by up to tens
of grey levels. MATLAB's algorithm, reproduced here:

- Keys' cubic kernel with a = -0.5;
- when downscaling, the kernel is widened by 1/scale (antialiasing);
- output pixel x (1-based) samples input position u = x/scale + 0.5 * (1 - 1/scale), where
  scale is the factor itself when given, or out/in per axis when a size is given;
- taps falling outside the image are mirrored symmetrically (edge sample repeated);
- output size ceil(scale * input) when a scale is given;
- the axis with the smaller scale is resized first (rows first on ties);
- integer images are computed in double and rounded half away from zero and clipped once, at
  the end. This is what the reference vectors (GNU Octave's MATLAB-compatible `imresize`)
  do; rounding after each axis pass instead differs from them by up to 11 grey levels.

Each axis is one matmul with a cached (out, in) weight matrix, so any batch of images
(..., H, W) on CPU or CUDA is resized without Python loops over pixels.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["imresize", "modcrop", "output_size"]

_INT_RANGES = {torch.uint8: (0.0, 255.0), torch.uint16: (0.0, 65535.0)}


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel, a = -0.5 (MATLAB's `cubic`)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


@lru_cache(maxsize=128)
def _weights_np(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """The (out_len, in_len) float64 matrix of MATLAB's `contributions` for one axis."""
    width = 4.0
    if scale < 1 and antialias:
        kernel = lambda t: scale * _cubic(scale * t)  # noqa: E731
        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    ind = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    w = kernel(u[:, None] - ind)
    w = w / w.sum(axis=1, keepdims=True)
    # Symmetric extension: aux = [1..n, n..1], indexed cyclically (MATLAB's mirroring).
    period = 2 * in_len
    j = np.mod(ind.astype(np.int64) - 1, period)
    j = np.where(j < in_len, j, period - 1 - j)
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), j.ravel()), w.ravel())
    return mat


@lru_cache(maxsize=128)
def _weights(
    in_len: int,
    out_len: int,
    scale: float,
    antialias: bool,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    return torch.from_numpy(_weights_np(in_len, out_len, scale, antialias)).to(device, dtype)


def output_size(in_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ceil(scale * input) on each axis."""
    return (math.ceil(scale * in_hw[0]), math.ceil(scale * in_hw[1]))


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resize like MATLAB `imresize(x, scale, 'bicubic')` (or `imresize(x, [h w], ...)`).

    `x` is (H, W), (C, H, W), (B, C, H, W) or any (..., H, W) tensor; give exactly one of
    `scale` (output ceil(scale * in)) or `size=(h, w)` (per-axis scale out/in, as MATLAB).

    dtypes: float64 is computed in float64 (matches MATLAB to ~1e-12); other floats are
    computed in float32 and returned in their own dtype. uint8/uint16 are computed in float64
    (exact rounding needs it), rounded half away from zero, clipped to the type's range and
    returned in the input dtype.
    """
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of `scale` or `size`")
    if x.ndim < 2:
        raise ValueError(f"imresize: expected a (..., H, W) tensor, got shape {tuple(x.shape)}")
    in_h, in_w = x.shape[-2], x.shape[-1]
    if in_h == 0 or in_w == 0:
        raise ValueError(f"imresize: empty image of shape {tuple(x.shape)}")
    if scale is not None:
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"imresize: scale must be a positive number, got {scale}")
        out_h, out_w = output_size((in_h, in_w), scale)
        scales = (float(scale), float(scale))
    else:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"imresize: size must be positive, got {size}")
        scales = (out_h / in_h, out_w / in_w)

    in_dtype = x.dtype
    int_range = _INT_RANGES.get(in_dtype)
    if int_range is not None or in_dtype == torch.float64:
        work = torch.float64
    elif in_dtype.is_floating_point:
        work = torch.float32
    else:
        raise TypeError(f"imresize: unsupported dtype {in_dtype} (use float, uint8 or uint16)")

    y = x.to(work)
    # MATLAB: [~, order] = sort(scale), a stable sort: smaller scale first, rows on ties.
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        n_in = y.shape[-2] if axis == 0 else y.shape[-1]
        n_out = out_h if axis == 0 else out_w
        if n_in == n_out and scales[axis] == 1.0:
            continue  # identity: MATLAB skips it too
        w = _weights(n_in, n_out, scales[axis], antialias, work, y.device)
        y = torch.matmul(w, y) if axis == 0 else torch.matmul(y, w.T)
    if int_range is not None:
        # Round half away from zero, then clip (negative values clip to 0 either way).
        y = torch.floor(y + 0.5).clamp_(*int_range)
    return y.to(in_dtype)


def modcrop(x, scale: int):
    """Crop an image so height and width are multiples of `scale` (the SR benchmark protocol).

    Torch tensors are (..., H, W) (last two dims); NumPy arrays are H x W [x C] (first two).
    The top-left corner is kept, as in the literature's `modcrop.m`.
    """
    if scale < 1:
        raise ValueError(f"modcrop: scale must be >= 1, got {scale}")
    if isinstance(x, torch.Tensor):
        h, w = x.shape[-2], x.shape[-1]
        return x[..., : h - h % scale, : w - w % scale]
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ValueError(f"modcrop: expected an H x W [x C] array, got shape {x.shape}")
        h, w = x.shape[:2]
        return x[: h - h % scale, : w - w % scale]
    raise TypeError(f"modcrop: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
