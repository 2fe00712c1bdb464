"""Image-quality metrics of the SR literature: Y-channel PSNR/SSIM, RGB PSNR, the paper's SSIM,
and (re-exported from `srgan.niqe`) the no-reference NIQE.

Conventions (the protocol of the SR literature and of the SRGAN paper):

- Values are in [0, 255] (uint8 images or floats on that scale; scale [0, 1] tensors by 255).
- Two layouts are accepted, told apart by type: NumPy arrays are images as files hold them,
  H x W or H x W x C; torch tensors are channel-first, (H, W), (C, H, W) or (B, C, H, W), and
  may live on the GPU (for validation during training). NumPy inputs are converted to torch,
  so both go through the same code.
- Y is MATLAB's `rgb2ycbcr` luma in [16, 235], unrounded. Grey images (no channel axis, or one
  channel) are scored as they are, not converted: to score a grey image the way most Python
  toolboxes do (as RGB with R = G = B, converted to Y), expand it to three channels first.
- `crop_border` pixels are removed at each side before scoring (the literature crops `scale`).
- Scores are computed in float64 and returned as Python floats (a mean over the whole batch).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from srgan.niqe import niqe  # no-reference score; its own module (NumPy)

__all__ = ["niqe", "psnr", "psnr_rgb", "psnr_y", "rgb_to_y", "ssim", "ssim_paper", "ssim_y"]

Image = np.ndarray | torch.Tensor

_Y_COEFFS = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, for R, G, B in [0, 1]


def _as_tensor(x: Image) -> torch.Tensor:
    """NumPy H x W [x C] -> torch (H, W) or (C, H, W); tensors pass through unchanged."""
    if isinstance(x, torch.Tensor):
        if x.ndim < 2:
            raise ValueError(f"expected an image tensor (..., H, W), got shape {tuple(x.shape)}")
        return x
    if isinstance(x, np.ndarray):
        if x.ndim == 2:
            return torch.from_numpy(np.ascontiguousarray(x))
        if x.ndim == 3:
            return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
        raise ValueError(f"expected an H x W [x C] array, got shape {x.shape}")
    raise TypeError(f"expected a numpy.ndarray or torch.Tensor, got {type(x).__name__}")


def _pair(a: Image, b: Image) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = _as_tensor(a), _as_tensor(b)
    if ta.shape != tb.shape:
        raise ValueError(f"images differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    return ta, tb.to(ta.device)


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return x
    h, w = x.shape[-2], x.shape[-1]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"crop_border {border} leaves nothing of a {h}x{w} image")
    return x[..., border:-border, border:-border]


def _y_tensor(x: torch.Tensor) -> torch.Tensor:
    """Channel-first RGB (..., 3, H, W) -> Y (..., H, W); grey (H, W) or (..., 1, H, W) as is."""
    if x.ndim == 2:
        return x
    if x.shape[-3] == 1:
        return x[..., 0, :, :]
    if x.shape[-3] != 3:
        raise ValueError(f"expected 1 or 3 channels, got shape {tuple(x.shape)}")
    xf = x if x.is_floating_point() else x.to(torch.float64)
    r, g, b = xf[..., 0, :, :], xf[..., 1, :, :], xf[..., 2, :, :]
    return 16.0 + (_Y_COEFFS[0] * r + _Y_COEFFS[1] * g + _Y_COEFFS[2] * b) / 255.0


def rgb_to_y(x: Image) -> Image:
    """MATLAB `rgb2ycbcr` luma: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 in [16, 235].

    NumPy H x W x 3 -> H x W float64; torch (..., 3, H, W) -> (..., H, W), in the input's
    float dtype (float64 for integer input). Input RGB in [0, 255].
    """
    if isinstance(x, np.ndarray):
        if x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"rgb_to_y: expected an H x W x 3 array, got shape {x.shape}")
        return _y_tensor(_as_tensor(x).to(torch.float64)).numpy()
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"rgb_to_y: expected a numpy.ndarray or torch.Tensor, got {type(x)}")
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y: expected a (..., 3, H, W) tensor, got {tuple(x.shape)}")
    return _y_tensor(x)


# ---------------------------------------------------------------------------------- PSNR


def _psnr(a: torch.Tensor, b: torch.Tensor, peak: float) -> float:
    mse = torch.mean((a.to(torch.float64) - b.to(torch.float64)) ** 2).item()
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def psnr(a: Image, b: Image, crop_border: int = 0, peak: float = 255.0) -> float:
    """PSNR in dB over all values (every channel) after cropping; identical images give inf."""
    ta, tb = _pair(a, b)
    return _psnr(_crop(ta, crop_border), _crop(tb, crop_border), peak)


def psnr_rgb(a: Image, b: Image, crop_border: int = 0) -> float:
    """PSNR over R, G and B together (peak 255): the RGB column of SR tables."""
    return psnr(a, b, crop_border)


def psnr_y(a: Image, b: Image, crop_border: int = 0) -> float:
    """PSNR on MATLAB's Y channel (peak 255), `crop_border` pixels cropped at each side."""
    ta, tb = _pair(a, b)
    return _psnr(_crop(_y_tensor(ta), crop_border), _crop(_y_tensor(tb), crop_border), 255.0)


# ---------------------------------------------------------------------- SSIM (Wang et al.)

_K1, _K2 = 0.01, 0.03


def _gaussian_1d(size: int, sigma: float) -> tuple[float, ...]:
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return tuple((g / g.sum()).tolist())


# Filtering is a matmul with a banded matrix per axis (3-4x faster than a float64 conv2d on
# the CPU, and exact for integer sums); above this length the O(n^2) matrix costs more than
# it saves and conv2d is used instead.
_MATMUL_MAX = 2048


@lru_cache(maxsize=32)
def _band(n: int, taps: tuple[float, ...], same: bool, device: torch.device) -> torch.Tensor:
    """(n_out, n) matrix: out[i] = sum_j taps[j] * x[i + j - pad], zero outside the image;
    pad = len(taps) // 2 when `same` (output length n), else 0 (valid, n - len + 1)."""
    k = len(taps)
    pad = k // 2 if same else 0
    n_out = n if same else n - k + 1
    rows = np.arange(n_out)[:, None]
    cols = rows + np.arange(k)[None, :] - pad
    vals = np.broadcast_to(np.asarray(taps), cols.shape)
    keep = (cols >= 0) & (cols < n)
    mat = np.zeros((n_out, n), dtype=np.float64)
    np.add.at(mat, (np.broadcast_to(rows, cols.shape)[keep], cols[keep]), vals[keep])
    return torch.from_numpy(mat).to(device)


def _filter2d(x: torch.Tensor, taps: tuple[float, ...], same: bool,
              matmul_max: int = _MATMUL_MAX) -> torch.Tensor:
    """Separable filtering of float64 planes (N, H, W) with the same 1-D taps on both axes:
    zero-padded `same` output, or the `valid` region (banded matmuls up to `matmul_max`
    pixels a side, conv2d above)."""
    h, w = x.shape[-2:]
    if max(h, w) <= matmul_max:
        return _band(h, taps, same, x.device) @ x @ _band(w, taps, same, x.device).T
    k = torch.tensor(taps, dtype=torch.float64, device=x.device)
    n, pad = k.numel(), (k.numel() // 2 if same else 0)
    y = F.conv2d(x.unsqueeze(1), k.view(1, 1, 1, n), padding=(0, pad))
    return F.conv2d(y, k.view(1, 1, n, 1), padding=(pad, 0)).squeeze(1)


def _ssim_wang(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean SSIM over the valid region of (N, H, W) float64 planes; mean over planes too."""
    if x.shape[-1] < 11 or x.shape[-2] < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {tuple(x.shape[-2:])}")
    c1, c2 = (_K1 * 255.0) ** 2, (_K2 * 255.0) ** 2
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=1).flatten(0, 1)
    filtered = _filter2d(stack, _gaussian_1d(11, 1.5), same=False)
    mu_x, mu_y, xx, yy, xy = filtered.unflatten(0, (x.shape[0], 5)).unbind(1)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (num / den).mean().item()


def _planes(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64).reshape(-1, x.shape[-2], x.shape[-1])


def ssim(a: Image, b: Image, crop_border: int = 0) -> float:
    """SSIM of Wang et al. (2004) as `ssim_index.m`: 11x11 Gaussian window (sigma 1.5),
    K1 = 0.01, K2 = 0.03, L = 255, mean over the valid region (no padding).

    Multi-channel images are scored per channel and averaged (as scikit-image does).
    """
    ta, tb = _pair(a, b)
    return _ssim_wang(_planes(_crop(ta, crop_border)), _planes(_crop(tb, crop_border)))


def ssim_y(a: Image, b: Image, crop_border: int = 0) -> float:
    """Wang et al.'s SSIM on MATLAB's Y channel after cropping: the SSIM of SR tables."""
    ta, tb = _pair(a, b)
    ya, yb = _crop(_y_tensor(ta), crop_border), _crop(_y_tensor(tb), crop_border)
    return _ssim_wang(_planes(ya), _planes(yb))


# ------------------------------------------------------------- SSIM as in the SRGAN paper

_KERNEL_WEIGHT = 256  # daala's integer kernels sum to 1 << 8


def _daala_kernel(sigma: float, max_len: int) -> tuple[int, ...]:
    """daala's integer Gaussian: taps round(256 * N(c; sigma)) for c = 1..len, the centre
    tap taking what is left of 256; `len` is the largest offset whose unrounded tap would
    still be >= 0.5 (i.e. >= 0.5/256 of the total), capped at max_len - 1."""
    s = math.sqrt(0.5 * math.pi) * sigma / _KERNEL_WEIGHT
    length = 0 if s >= 1 else math.floor(sigma * math.sqrt(-2.0 * math.log(s)))
    length = max_len - 1 if length >= max_len else length
    norm = 1.0 / (math.sqrt(2.0 * math.pi) * sigma)
    side = [math.floor(_KERNEL_WEIGHT * norm * math.exp(-0.5 * c * c / sigma**2) + 0.5)
            for c in range(length, 0, -1)]  # fmt: skip
    centre = _KERNEL_WEIGHT - 2 * sum(side)
    return (*side, centre, *side[::-1])


def _ssim_daala_plane(x: torch.Tensor, y: torch.Tensor) -> float:
    """daala `calc_ssim` on one (H, W) plane of 8-bit integer samples (held in float64)."""
    h, w = x.shape
    sigma = h * 1.5 / 256  # both axes use the image height (pixel aspect ratio 1)
    taps = tuple(float(t) for t in _daala_kernel(sigma, min(h, w)))
    ones = torch.ones_like(x)
    stack = torch.stack([x, y, x * x, x * y, y * y, ones])
    # Zero padding == daala's clipping of the window at the borders; the filtered "ones"
    # plane is the window weight actually used at each pixel. With integer samples and
    # integer taps every sum is an integer below 2**53: float64 reproduces daala's int64.
    mx, my, xx, xy, yy, wt = _filter2d(stack, taps, same=True).unbind(0)
    c1 = 255.0**2 * _K1**2 * wt * wt
    c2 = 255.0**2 * _K2**2 * wt * wt
    mx2, mxy, my2 = mx * mx, mx * my, my * my
    local = ((2 * mxy + c1) * (c2 + 2 * (xy * wt - mxy))) / (
        (mx2 + my2 + c1) * (xx * wt - mx2 + yy * wt - my2 + c2)
    )
    return ((wt * local).sum() / wt.sum()).item()


def _to_8bit(y: torch.Tensor) -> torch.Tensor:
    if y.dtype == torch.uint8:
        return y.to(torch.float64)
    return torch.floor(y.to(torch.float64) + 0.5).clamp_(0, 255)


def ssim_paper(a: Image, b: Image, crop_border: int = 0) -> float:
    """SSIM as the SRGAN paper's tables: daala's `tools/dump_ssim.c` (xiph/daala) on Y.

    Our reading of `calc_ssim` there, reimplemented:

    - samples are 8-bit integers: RGB inputs go to MATLAB Y and are rounded (half away from
      zero) and clipped to 0..255, as a conversion to an 8-bit Y4M file would; grey inputs
      are rounded the same way, uint8 ones used as they are;
    - the window is a separable Gaussian with sigma = 1.5 * H / 256 on both axes (H the
      image height, so the window grows with the image), with integer taps out of 256: taps
      round(256 * N(c; sigma)) for offsets whose unrounded value is at least 0.5, the centre
      tap taking the remainder so the taps sum to 256; at most min(H, W) - 1 taps per side;
    - at the borders the window is clipped to the image and the moments are normalised by
      the weight W actually used (no valid-region crop, no padding values);
    - local SSIM with K1 = 0.01, K2 = 0.03, L = 255 and population (co)variances under the
      normalised window;
    - the score is the mean of the local SSIM weighted by W, so border pixels count less.

    Several planes (a batch) are scored one by one and averaged, as daala averages frames.
    """
    ta, tb = _pair(a, b)
    ya, yb = _to_8bit(_y_tensor(ta)), _to_8bit(_y_tensor(tb))
    pa, pb = _planes(_crop(ya, crop_border)), _planes(_crop(yb, crop_border))
    scores = [_ssim_daala_plane(x, y) for x, y in zip(pa, pb, strict=True)]
    return float(sum(scores) / len(scores))
