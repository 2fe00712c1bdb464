"""NIQE, the no-reference "naturalness" score of Mittal, Soundararajan and Bovik (IEEE Signal
Processing Letters 2013, "Making a 'Completely Blind' Image Quality Analyzer"), as the
authors' MATLAB release (and MATLAB's `niqe`) computes it. Lower is more natural.

PSNR rewards blur; NIQE does not look at a reference at all, so it is the usual way to score
GAN super-resolution (it is the no-reference half of the PIRM 2018 perceptual index). The
algorithm, implemented from the paper and its published description:

1. Luminance: an RGB image goes to MATLAB `rgb2ycbcr`'s Y (16-235), rounded half away from
   zero as an 8-bit Y image holds it; a grey image is used as it is. `crop_border` pixels
   are shaved off each side, then the image is cut down to whole 96x96 blocks (top-left
   kept).
2. At two scales (the image, then MATLAB bicubic `imresize(im, 0.5)` with antialiasing,
   unrounded): MSCN coefficients (I - mu) / (sigma + 1), mu and sigma the local mean and
   deviation under a normalised 7x7 Gaussian (sigma 7/6), edges replicated as `imfilter(...,
   'replicate')` does.
3. Per block (96x96 at scale 1, 48x48 at scale 2): 18 features, namely an asymmetric
   generalised Gaussian (AGGD) fit of the MSCN values (shape, mean of the two scales), and
   AGGD fits (shape, mean, left and right scale) of the products of each coefficient with its
   neighbour at the 4 shifts (0,1), (1,0), (1,1), (1,-1), taken circularly inside the block.
   The fits are moment matching over the shape grid 0.2:0.001:10.
4. The 36 features of all blocks form a multivariate Gaussian (NaN-aware mean; covariance of
   the NaN-free rows); the score is the distance to the pristine model,
   sqrt((mu_p - mu)' pinv((cov_p + cov) / 2) (mu_p - mu)).

At scoring time every block counts: the sharpness selection of the paper (blocks whose
mean local deviation is above a fraction of the sharpest) is part of *fitting* the pristine
model, not of `computequality`/`niqe` scoring an image.

The pristine model shipped next to this file, `niqe_pris_params.npz` (`mu_pris_param` 1x36,
`cov_pris_param` 36x36, float64, read with allow_pickle=False), is `modelparameters.mat` of the
authors' MATLAB release (Laboratory for Image and Video Engineering, UT Austin, 2012), as
redistributed in NumPy form by the BasicSR toolbox (Apache-2.0), copied unchanged from the
project's `testvectors/niqe`. The LIVE release permits use, copying and redistribution for any
purpose provided its copyright notice is kept, LIVE/CPS at UT Austin are acknowledged and the
paper above is cited in work that reports results obtained with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["BLOCK", "NiqeModel", "default_model", "gaussian_taps", "gaussian_window",
           "luminance", "mscn", "niqe", "niqe_features"]

BLOCK = 96  # block (patch) side at the first scale, as the release and MATLAB's default model
_MODEL_FILE = Path(__file__).with_name("niqe_pris_params.npz")
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
N_FEATURES = 36
# Grey levels (of 0-255). Flat areas (sky, studio backgrounds) make I - mu mathematically 0,
# but the filter's sums leave +-1e-14 there (float32 code: up to ~1e-5), with a sign that
# depends on summation order; the AGGD fit counts positives and negatives separately, so that
# noise alone moved Set5 head's score by 0.37. Real contrast of 8-bit data is far larger (the
# window's smallest tap is 1.6e-4: one grey level anywhere in it moves I - mu that much), so
# snapping below 1e-6 to 0 makes the score independent of how the sums are done. Measured on
# the testvectors: all seven within 6e-5, baboon within 1e-6 of MATLAB's 5.72957338.
ZERO_TOL = 1e-6


@dataclass(frozen=True)
class NiqeModel:
    """A pristine multivariate Gaussian: mean (36,) and covariance (36, 36) of the features."""

    mu: np.ndarray
    cov: np.ndarray

    def __post_init__(self) -> None:
        if self.mu.shape != (N_FEATURES,) or self.cov.shape != (N_FEATURES, N_FEATURES):
            raise ValueError(f"NIQE model needs mu ({N_FEATURES},) and cov ({N_FEATURES}, "
                             f"{N_FEATURES}), got {self.mu.shape} and {self.cov.shape}")
        if not (np.isfinite(self.mu).all() and np.isfinite(self.cov).all()):
            raise ValueError("NIQE model has non-finite values")

    @classmethod
    def from_npz(cls, path: str | Path) -> NiqeModel:
        """Read `mu_pris_param` and `cov_pris_param` from a .npz (never unpickled)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                mu = np.asarray(z["mu_pris_param"], dtype=np.float64).reshape(-1)
                cov = np.asarray(z["cov_pris_param"], dtype=np.float64)
        except KeyError as exc:
            raise ValueError(f"{path}: not a NIQE model (missing {exc})") from exc
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the NIQE model ({exc})") from exc
        return cls(mu, cov)


@lru_cache(maxsize=1)
def default_model() -> NiqeModel:
    """The pristine model of the authors' release, shipped with the package."""
    return NiqeModel.from_npz(_MODEL_FILE)


@lru_cache(maxsize=4)
def gaussian_taps(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """The 1-D factor of the window: a normalised Gaussian of `size` taps."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    g = g / g.sum()
    g.setflags(write=False)
    return g


def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """MATLAB `fspecial('gaussian', size, sigma)`, normalised to sum 1 (the outer product of
    `gaussian_taps`, which is how it is applied)."""
    g = gaussian_taps(size, sigma)
    return np.outer(g, g)


def _as_numpy(img) -> np.ndarray:
    """NumPy H x W [x C] as is; torch (H, W) / (C, H, W) (the metrics' layout) to H x W x C."""
    if isinstance(img, np.ndarray):
        return img
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(img, torch.Tensor):
        a = img.detach().cpu().numpy()
        if a.ndim == 3:
            a = a.transpose(1, 2, 0)
        return a
    raise TypeError(f"niqe: expected a numpy.ndarray or torch.Tensor, got {type(img).__name__}")


def luminance(img) -> np.ndarray:
    """The plane NIQE scores, float64 in [0, 255]: MATLAB `rgb2ycbcr` Y of RGB, rounded
    half away from zero (as an 8-bit Y image); grey (H x W or one channel) as it is.

    NumPy images are H x W [x C], torch tensors (H, W) or (C, H, W); alpha is ignored."""
    a = _as_numpy(img)
    if a.ndim == 3 and a.shape[2] in (2, 4):
        a = a[:, :, :-1]  # alpha
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return a.astype(np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"niqe: expected a grey or RGB image, got shape {a.shape}")
    rgb = a.astype(np.float64)
    y = 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    return np.floor(y + 0.5)


def _filter_replicate(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """`imfilter(x, outer(taps, taps), 'replicate')`: edges repeated, output size of x; done
    separably (7 + 7 passes, not 49: the same values to 1e-14, 1.5x faster)."""
    k = taps.shape[0]
    p = k // 2
    padded = np.pad(x, p, mode="edge")
    h, w = x.shape
    rows = np.zeros((h + 2 * p, w))
    for j in range(k):
        rows += taps[j] * padded[:, j:j + w]
    out = np.zeros_like(x)
    for i in range(k):
        out += taps[i] * rows[i:i + h]
    return out


def mscn(x: np.ndarray, taps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients (I - mu) / (sigma + 1), and sigma,
    under the window outer(taps, taps) (default: 7x7, sigma 7/6).

    I - mu below ZERO_TOL grey levels is set to exactly 0: in a flat area it is 0, and what
    the arithmetic leaves there is rounding noise whose sign would decide which side of the
    AGGD fit the value counts on (see ZERO_TOL)."""
    g = gaussian_taps() if taps is None else taps
    mu = _filter_replicate(x, g)
    sigma = np.sqrt(np.abs(_filter_replicate(x * x, g) - mu * mu))
    d = x - mu
    d[np.abs(d) < ZERO_TOL] = 0.0
    return d / (sigma + 1.0), sigma


@lru_cache(maxsize=1)
def _shape_grid() -> tuple[np.ndarray, np.ndarray]:
    """The shape grid 0.2:0.001:10 and its moment ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))."""
    gam = 0.2 + 0.001 * np.arange(9801, dtype=np.float64)
    r = np.array([math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)) for g in gam])
    gam.setflags(write=False)
    r.setflags(write=False)
    return gam, r


def _aggd_fit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit of each row of `v` (n, m): shape alpha, left and right scale.

    Empty sides give NaN scales (MATLAB's mean of nothing), as the release does."""
    gam, r_gam = _shape_grid()
    neg, pos = v < 0, v > 0
    sq = v * v
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(v), axis=1) ** 2 / np.mean(sq, axis=1)
        r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    # MATLAB's [~, i] = min((r_gam - r_norm).^2): the first minimum. r_gam increases
    # strictly, so only the grid points either side of r_norm can be it (no n x 9801
    # matrix). A NaN or infinite ratio (a flat block) gives MATLAB's first entry.
    finite = np.isfinite(r_norm)
    r = np.where(finite, r_norm, 0.0)
    hi = np.clip(np.searchsorted(r_gam, r), 1, len(r_gam) - 1)
    nearer_hi = (r_gam[hi] - r) ** 2 < (r_gam[hi - 1] - r) ** 2
    idx = np.where(finite, np.where(nearer_hi, hi, hi - 1), 0)
    alpha = gam[idx]
    ratio = np.sqrt(np.array([math.gamma(1 / a) / math.gamma(3 / a) for a in alpha]))
    return alpha, left_std * ratio, right_std * ratio


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 features of each block of `blocks` (n, b, b) of MSCN coefficients."""
    n = blocks.shape[0]
    alpha, bl, br = _aggd_fit(blocks.reshape(n, -1))
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        pair = blocks * np.roll(blocks, shift, axis=(1, 2))  # MATLAB circshift in the block
        alpha, bl, br = _aggd_fit(pair.reshape(n, -1))
        g = np.array([math.gamma(2 / a) / math.gamma(1 / a) for a in alpha])
        feats += [alpha, (br - bl) * g, bl, br]
    return np.stack(feats, axis=1)


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size blocks of x (whose sides are multiples of size)."""
    h, w = x.shape
    return x.reshape(h // size, size, w // size, size).swapaxes(1, 2).reshape(-1, size, size)


def niqe_features(y: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """(n_blocks, 36) features of a luminance plane at the two scales; the plane is cut down
    to whole blocks first. Raises ValueError when not even one block fits."""
    import torch

    from srgan.resize import imresize

    if block < 2 or block % 2:
        raise ValueError(f"niqe: the block size must be even and >= 2, got {block}")
    h, w = y.shape
    nh, nw = h // block, w // block
    if nh == 0 or nw == 0:
        raise ValueError(f"niqe: a {w}x{h} image is smaller than one {block}x{block} block")
    x = np.asarray(y[: nh * block, : nw * block], dtype=np.float64)
    feats = []
    for scale in (1, 2):
        coeffs, _ = mscn(x)
        feats.append(_block_features(_blocks(coeffs, block // scale)))
        if scale == 1:
            x = imresize(torch.from_numpy(np.ascontiguousarray(x)), scale=0.5).numpy()
    return np.concatenate(feats, axis=1)


def niqe(img, crop_border: int = 0, model: NiqeModel | None = None, block: int = BLOCK) -> float:
    """NIQE of an image (lower = more natural statistics), as MATLAB's `niqe`.

    `img`: NumPy H x W [x C] or torch (H, W) / (C, H, W), values in [0, 255]; RGB is scored
    on its MATLAB Y channel (rounded), grey as it is. `crop_border` pixels are removed from
    each side first. The image must hold at least one `block` x `block` block after the crop
    (two or more for a meaningful covariance). `model` defaults to the authors' pristine
    model."""
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    y = luminance(img)
    if crop_border:
        h, w = y.shape
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise ValueError(f"niqe: crop_border {crop_border} leaves nothing of a {w}x{h} image")
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    if not np.isfinite(y).all():
        raise ValueError("niqe: the image has non-finite values")
    m = default_model() if model is None else model
    feats = niqe_features(y, block)
    if np.isnan(feats).all(axis=0).any():  # a flat block has no AGGD scales: NaN
        raise ValueError("niqe: no block has usable statistics (a flat image?)")
    mu = np.nanmean(feats, axis=0)  # MATLAB nanmean: per feature, over blocks that have it
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) >= 2:  # MATLAB nancov: the rows without NaN
        cov = np.cov(complete, rowvar=False)
    else:  # nancov of one observation is zero (it normalises by N when N == 1)
        cov = np.zeros((feats.shape[1], feats.shape[1]))
    d = m.mu - mu
    q = float(d @ np.linalg.pinv((m.cov + cov) / 2) @ d)
    return math.sqrt(max(q, 0.0))
