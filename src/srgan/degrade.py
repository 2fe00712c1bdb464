"""Realistic degradations: Real-ESRGAN's second-order model (Wang et al. 2021, sec. 3).

The bicubic protocol assumes the low-resolution image is a clean photograph shrunk by MATLAB's
bicubic. Photos people have are blurred by lenses, resized by software, noisy from sensors and
JPEG-compressed, often twice over (a photo edited and re-shared). Training on patches degraded
by two random rounds of blur -> resize -> noise -> JPEG, then a sinc-filtered resize and one
more JPEG, teaches the network to remove all of those instead of sharpening them.

Everything here works on one patch (3 x H x W float in [0, 1], CPU) with a NumPy random
generator, so a DataLoader-style worker process can degrade patches while the training process
trains, and a patch's degradation depends only on its seed (reproducible on resume, whatever
the number of workers). JPEG is Pillow's libjpeg, not an approximation.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "KERNEL_TYPES", "RESIZE_MODES", "DegradationParams", "Recipe", "Round", "RoundDraw",
    "apply_recipe", "circular_lowpass_kernel", "degrade_patch", "draw_recipe", "filter2d",
    "gaussian_kernel", "gaussian_noise", "generalized_kernel", "jpeg", "plateau_kernel",
    "poisson_noise", "random_kernel", "resize",
]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
MAX_KERNEL = 21  # every kernel is zero-padded to 21 x 21, as Real-ESRGAN does

_REC601 = np.array([0.299, 0.587, 0.114])  # grey for grey Poisson noise (OpenCV's weights)


# ------------------------------------------------------------------------------ parameters


def _kernel_probs() -> list[float]:
    return [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]


@dataclass(frozen=True)
class Round:
    """One round of blur -> resize -> noise -> JPEG and the ranges its values are drawn from
    (defaults: Real-ESRGAN's `train_realesrnet_x4plus.yml`)."""

    blur_prob: float  # probability that this round blurs at all
    kernel_probs: list[float]  # over KERNEL_TYPES
    sinc_prob: float  # a 2-D sinc (ringing) kernel instead of the Gaussian family
    blur_sigma: list[float]
    betag: list[float]  # generalized Gaussian shape
    betap: list[float]  # plateau shape
    resize_probs: list[float]  # up / down / keep
    resize_range: list[float]
    gaussian_noise_prob: float  # else Poisson noise
    noise_sigma: list[float]  # in 8-bit levels
    poisson_scale: list[float]
    gray_noise_prob: float
    jpeg_quality: list[float]


@dataclass
class DegradationParams:
    """The whole second-order model, under Real-ESRGAN's option names (a `2` names the second
    round): two rounds, then a final sinc-filtered resize and a JPEG in random order. It is
    the `[degradation]` section of a training config."""

    kernel_probs: list[float] = field(default_factory=_kernel_probs)  # over KERNEL_TYPES
    sinc_prob: float = 0.1
    blur_sigma: list[float] = field(default_factory=lambda: [0.2, 3.0])
    betag_range: list[float] = field(default_factory=lambda: [0.5, 4.0])
    betap_range: list[float] = field(default_factory=lambda: [1.0, 2.0])
    resize_prob: list[float] = field(default_factory=lambda: [0.2, 0.7, 0.1])  # up/down/keep
    resize_range: list[float] = field(default_factory=lambda: [0.15, 1.5])
    gaussian_noise_prob: float = 0.5
    noise_range: list[float] = field(default_factory=lambda: [1.0, 30.0])
    poisson_scale_range: list[float] = field(default_factory=lambda: [0.05, 3.0])
    gray_noise_prob: float = 0.4
    jpeg_range: list[float] = field(default_factory=lambda: [30.0, 95.0])

    second_blur_prob: float = 0.8
    kernel_probs2: list[float] = field(default_factory=_kernel_probs)
    sinc_prob2: float = 0.1
    blur_sigma2: list[float] = field(default_factory=lambda: [0.2, 1.5])
    betag_range2: list[float] = field(default_factory=lambda: [0.5, 4.0])
    betap_range2: list[float] = field(default_factory=lambda: [1.0, 2.0])
    resize_prob2: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.3])
    resize_range2: list[float] = field(default_factory=lambda: [0.3, 1.2])
    gaussian_noise_prob2: float = 0.5
    noise_range2: list[float] = field(default_factory=lambda: [1.0, 25.0])
    poisson_scale_range2: list[float] = field(default_factory=lambda: [0.05, 2.5])
    gray_noise_prob2: float = 0.4
    jpeg_range2: list[float] = field(default_factory=lambda: [30.0, 95.0])

    final_sinc_prob: float = 0.8

    def rounds(self) -> tuple[Round, Round]:
        def one(sfx: str, blur_prob: float) -> Round:
            g = lambda name: getattr(self, name + sfx)  # noqa: E731
            return Round(blur_prob, g("kernel_probs"), g("sinc_prob"), g("blur_sigma"),
                         g("betag_range"), g("betap_range"), g("resize_prob"),
                         g("resize_range"), g("gaussian_noise_prob"), g("noise_range"),
                         g("poisson_scale_range"), g("gray_noise_prob"), g("jpeg_range"))

        return one("", 1.0), one("2", self.second_blur_prob)

    def check(self) -> list[str]:
        """Problems as 'key: what is wrong' (empty when usable)."""
        out = []
        for sfx in ("", "2"):
            def bad(key: str, why: str) -> None:
                out.append(f"{key}{sfx}: {why}")  # noqa: B023 (called right away)

            for key in ("sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
                v = getattr(self, key + sfx)
                if not 0 <= v <= 1:
                    bad(key, f"a probability in [0, 1], got {v}")
            for key, n in (("kernel_probs", len(KERNEL_TYPES)), ("resize_prob", 3)):
                v = getattr(self, key + sfx)
                if len(v) != n or any(not (p >= 0 and math.isfinite(p)) for p in v) or (
                        sum(v) <= 0):
                    bad(key, f"{n} non-negative weights, not all 0, got {v}")
            for key, lo, hi in (("blur_sigma", 1e-3, 100), ("betag_range", 1e-3, 100),
                                ("betap_range", 1e-3, 100), ("resize_range", 0.05, 4),
                                ("noise_range", 0.0, 255), ("poisson_scale_range", 0.0, 100),
                                ("jpeg_range", 1.0, 100)):
                v = getattr(self, key + sfx)
                if len(v) != 2 or not all(lo <= x <= hi for x in v) or v[0] > v[1]:
                    bad(key, f"a range [low, high] with {lo} <= low <= high <= {hi}, got {v}")
        for key in ("second_blur_prob", "final_sinc_prob"):
            v = getattr(self, key)
            if not 0 <= v <= 1:
                out.append(f"{key}: a probability in [0, 1], got {v}")
        return out


# ------------------------------------------------------------------------------ kernels


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(ax, ax)  # xx (columns), yy (rows)


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """x^T Sigma^-1 x on the grid, Sigma = R diag(sx^2, sy^2) R^T rotated by theta."""
    xx, yy = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy  # coordinates along the rotated axes
    v = -s * xx + c * yy
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float = 0.0
                    ) -> np.ndarray:
    """Anisotropic Gaussian, normalised to sum 1 (isotropic when sigma_x == sigma_y)."""
    k = np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta))
    return k / k.sum()


def generalized_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
                       ) -> np.ndarray:
    """exp(-0.5 (x^T S^-1 x)^beta): beta < 1 a sharper peak, beta > 1 a flatter top."""
    k = np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta) ** beta)
    return k / k.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
                   ) -> np.ndarray:
    """1 / (1 + (x^T S^-1 x)^beta): a flat top with heavy tails (out-of-focus lenses)."""
    k = 1.0 / (_quadratic_form(size, sigma_x, sigma_y, theta) ** beta + 1.0)
    return k / k.sum()


def circular_lowpass_kernel(size: int, cutoff: float) -> np.ndarray:
    """The ideal 2-D low-pass (a jinc, 'sinc' in Real-ESRGAN): cutoff in radians per pixel, so
    frequencies above cutoff / (2 pi) cycles per pixel are removed; ringing like sharpening
    and over-eager resizers leave. Normalised to sum 1."""
    r = np.hypot(*_grid(size))
    j1 = torch.special.bessel_j1(torch.from_numpy(cutoff * r)).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * j1 / (2 * math.pi * r)
    k[r == 0] = cutoff**2 / (4 * math.pi)  # the limit at the centre
    return k / k.sum()


def _pad_kernel(k: np.ndarray, size: int = MAX_KERNEL) -> np.ndarray:
    p = (size - k.shape[0]) // 2
    return np.pad(k, p) if p > 0 else k


def _beta(rng: np.random.Generator, rng_range: list[float]) -> float:
    """Half the time below 1, half above (Real-ESRGAN's draw for the shape parameters)."""
    lo, hi = rng_range
    if rng.random() < 0.5 and lo < 1:
        return float(rng.uniform(lo, min(1.0, hi)))
    return float(rng.uniform(max(1.0, lo), hi))


def random_kernel(rng: np.random.Generator, r: Round) -> tuple[str, np.ndarray]:
    """(kind, kernel): one blur kernel of the round's family ("sinc" or one of KERNEL_TYPES),
    7..21 pixels wide, padded to 21 x 21."""
    size = int(rng.choice(np.arange(7, MAX_KERNEL + 1, 2)))
    if rng.random() < r.sinc_prob:
        lo = math.pi / 3 if size < 13 else math.pi / 5
        return "sinc", _pad_kernel(circular_lowpass_kernel(size, float(rng.uniform(lo, math.pi))))
    probs = np.asarray(r.kernel_probs, dtype=np.float64)
    kind = KERNEL_TYPES[int(rng.choice(len(KERNEL_TYPES), p=probs / probs.sum()))]
    sx = float(rng.uniform(*r.blur_sigma))
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sy, theta = sx, 0.0
    else:
        sy, theta = float(rng.uniform(*r.blur_sigma)), float(rng.uniform(-math.pi, math.pi))
    if kind.startswith("generalized"):
        k = generalized_kernel(size, sx, sy, theta, _beta(rng, r.betag))
    elif kind.startswith("plateau"):
        k = plateau_kernel(size, sx, sy, theta, _beta(rng, r.betap))
    else:
        k = gaussian_kernel(size, sx, sy, theta)
    return kind, _pad_kernel(k)


# ------------------------------------------------------------------------------ operators


def filter2d(img: torch.Tensor, kernel: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(C, H, W) convolved with one k x k kernel per channel, reflect-padded (the border is
    replicated only where the patch is smaller than the kernel)."""
    k = torch.as_tensor(kernel, dtype=img.dtype)
    pad = k.shape[-1] // 2
    c, h, w = img.shape
    mode = "reflect" if pad < h and pad < w else "replicate"
    x = F.pad(img[None], (pad, pad, pad, pad), mode=mode)
    weight = k.flip(0, 1).expand(c, 1, *k.shape).contiguous()  # a true convolution
    return F.conv2d(x, weight, groups=c)[0]


def resize(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(C, H, W) to (C, h, w) with PyTorch's area, bilinear or bicubic (not antialiased: the
    aliasing of naive resizers is one of the degradations)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r}: use one of {RESIZE_MODES}")
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(img[None], size=size, mode=mode, **kwargs)[0]


def gaussian_noise(img: torch.Tensor, rng: np.random.Generator, sigma: float, gray: bool
                   ) -> torch.Tensor:
    """Additive white noise of `sigma` (in [0, 1] units); grey noise is the same on every
    channel (luminance noise), colour noise is independent per channel (sensor speckle)."""
    shape = (1, *img.shape[1:]) if gray else tuple(img.shape)
    noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * sigma
    return img + noise.to(img.dtype)


def poisson_noise(img: torch.Tensor, rng: np.random.Generator, scale: float, gray: bool
                  ) -> torch.Tensor:
    """Shot noise (variance proportional to intensity), `scale` times its natural strength.
    As Real-ESRGAN: the photon count is the number of distinct 8-bit levels, rounded up to a
    power of two; grey noise is computed on the luminance and added to every channel."""
    x = img.clamp(0, 1).double().numpy()
    if gray:
        x = np.tensordot(_REC601, x, axes=1)[None]
    levels = len(np.unique(np.round(x * 255)))
    vals = 2 ** math.ceil(math.log2(max(levels, 2)))
    noise = rng.poisson(x * vals) / vals - x
    return img + torch.from_numpy(noise * scale).to(img.dtype)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode as a real JPEG (Pillow's libjpeg, 4:2:0 as cameras and web sites save) at
    `quality` and decode again; the input is clamped and rounded to 8 bits first."""
    u8 = img.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    buf = io.BytesIO()
    Image.fromarray(u8, "RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).to(img.dtype) / 255.0


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class RoundDraw:
    """What one round does to a patch, drawn before any pixel is touched."""

    blur: str  # "none", "sinc" or one of KERNEL_TYPES
    kernel: np.ndarray | None
    size: tuple[int, int]  # after the random resize
    resize: str  # "up", "down" or "keep"
    resize_mode: str
    noise: str  # "gaussian" (level = sigma in [0, 1] units) or "poisson" (level = scale)
    noise_level: float
    gray_noise: bool
    quality: int


@dataclass(frozen=True)
class Recipe:
    """A whole patch's degradation: two rounds, then the final resize (mode, optional sinc)
    and JPEG, the JPEG first when `jpeg_first`."""

    first: RoundDraw
    second: RoundDraw
    lr_size: tuple[int, int]
    final_mode: str
    final_sinc: np.ndarray | None
    final_quality: int
    jpeg_first: bool


def _draw_round(rng: np.random.Generator, r: Round, size_of: tuple[int, int]) -> RoundDraw:
    blur, kernel = "none", None
    if rng.random() < r.blur_prob:
        blur, kernel = random_kernel(rng, r)
    probs = np.asarray(r.resize_probs, dtype=np.float64)
    how = ("up", "down", "keep")[int(rng.choice(3, p=probs / probs.sum()))]
    lo, hi = r.resize_range
    f = {"up": lambda: rng.uniform(1.0, max(1.0, hi)), "down": lambda: rng.uniform(min(lo, 1.0),
         1.0), "keep": lambda: 1.0}[how]()
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    size = (max(1, int(size_of[0] * f)), max(1, int(size_of[1] * f)))
    gray = bool(rng.random() < r.gray_noise_prob)
    if rng.random() < r.gaussian_noise_prob:
        noise, level = "gaussian", float(rng.uniform(*r.noise_sigma)) / 255.0
    else:
        noise, level = "poisson", float(rng.uniform(*r.poisson_scale))
    q = int(rng.integers(int(r.jpeg_quality[0]), int(r.jpeg_quality[1]) + 1))
    return RoundDraw(blur, kernel, size, how, mode, noise, level, gray, q)


def draw_recipe(rng: np.random.Generator, shape: tuple[int, int], scale: int,
                params: DegradationParams | None = None) -> Recipe:
    """Every random choice of one patch's degradation (HR `shape` = (H, W)); the noise
    samples themselves are drawn when the recipe is applied."""
    h, w = shape
    if h % scale or w % scale:
        raise ValueError(f"patch {w}x{h} is not a multiple of the scale {scale}")
    first, second = (params or DegradationParams()).rounds()
    lr_size = (h // scale, w // scale)
    d1 = _draw_round(rng, first, (h, w))
    d2 = _draw_round(rng, second, lr_size)
    sinc = None
    if rng.random() < (params or DegradationParams()).final_sinc_prob:
        size = int(rng.choice(np.arange(7, MAX_KERNEL + 1, 2)))
        cutoff = float(rng.uniform(math.pi / 3, math.pi))
        sinc = _pad_kernel(circular_lowpass_kernel(size, cutoff))
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    q = int(rng.integers(int(second.jpeg_quality[0]), int(second.jpeg_quality[1]) + 1))
    return Recipe(d1, d2, lr_size, mode, sinc, q, bool(rng.random() < 0.5))


def _apply_round(img: torch.Tensor, d: RoundDraw, rng: np.random.Generator) -> torch.Tensor:
    if d.kernel is not None:
        img = filter2d(img, d.kernel)
    img = resize(img, d.size, d.resize_mode)
    if d.noise == "gaussian":
        img = gaussian_noise(img, rng, d.noise_level, d.gray_noise)
    else:
        img = poisson_noise(img, rng, d.noise_level, d.gray_noise)
    return jpeg(img, d.quality)


def apply_recipe(hr: torch.Tensor, recipe: Recipe, rng: np.random.Generator) -> torch.Tensor:
    """(3, H, W) float HR in [0, 1] -> (3, H/scale, W/scale) LR in [0, 1], 8-bit values."""
    img = _apply_round(hr.float(), recipe.first, rng)
    img = _apply_round(img, recipe.second, rng)

    def to_lr(x: torch.Tensor) -> torch.Tensor:
        x = resize(x, recipe.lr_size, recipe.final_mode)
        return filter2d(x, recipe.final_sinc) if recipe.final_sinc is not None else x

    q = recipe.final_quality
    img = to_lr(jpeg(img, q)) if recipe.jpeg_first else jpeg(to_lr(img), q)
    return img.clamp(0, 1).mul(255).round().div(255)


def degrade_patch(hr: torch.Tensor, scale: int, rng: np.random.Generator,
                  params: DegradationParams | None = None) -> torch.Tensor:
    """(3, H, W) float HR in [0, 1] -> (3, H/scale, W/scale) realistic LR in [0, 1].

    First round at HR size, second round relative to the LR size, then in random order (a) a
    resize to the LR size, with a sinc filter at probability final_sinc_prob, and (b) a JPEG.
    """
    return apply_recipe(hr, draw_recipe(rng, tuple(hr.shape[-2:]), scale, params), rng)
