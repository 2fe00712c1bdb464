"""Losses of SRGAN (Ledig et al. 2017): content (pixel or VGG feature), adversarial, and an
optional discriminator feature-matching term.

Ranges follow the paper: generator output and HR targets in [-1, 1]. Pixel losses are taken
there (so the stage-1 MSE is the paper's); VGG features are computed from the images mapped
to [0, 1] (VGGFeatures normalises them for ImageNet inside).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srgan.nets.vgg import VGGFeatures, feature_layer_index, parse_layer

PIXEL_TERMS = ("mse", "l1")


class ContentLoss(nn.Module):
    """A weighted sum of content terms: `mse`, `l1`, and VGG19 features (`vgg54`,
    `vgg54_prerelu`, `vgg22`, any `vggIJ[_prerelu]`).

    A VGG term is MSE(s * phi(SR), s * phi(HR)) with s = `vgg_scale` (paper 1/12.75), so the
    term scales with s^2. All VGG terms share one network truncated after the deepest layer.
    `forward` returns the weighted total and each term's unweighted value (for the logs),
    plus `<term>_raw` (the VGG MSE with s = 1) to calibrate s against the pixel MSE.
    """

    def __init__(
        self,
        terms: dict[str, float],
        vgg_scale: float = 1.0 / 12.75,
        vgg_weights: str | None = "imagenet",
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("content loss needs at least one term")
        self.terms = dict(terms)
        self.vgg_scale = float(vgg_scale)
        self.vgg_layers: dict[str, int] = {}
        for name in self.terms:
            if name in PIXEL_TERMS:
                continue
            block, conv, after_relu = parse_layer(name)
            self.vgg_layers[name] = feature_layer_index(block, conv, after_relu)
        self.vgg: VGGFeatures | None = None
        if self.vgg_layers:
            deepest = max(self.vgg_layers.values(), key=lambda i: i)
            name = next(n for n, i in self.vgg_layers.items() if i == deepest)
            self.vgg = VGGFeatures(name, weights=vgg_weights)  # raises VGGWeightsMissing

    @property
    def uses_vgg(self) -> bool:
        return self.vgg is not None

    def _vgg_features(self, x01: torch.Tensor) -> dict[int, torch.Tensor]:
        assert self.vgg is not None
        wanted = set(self.vgg_layers.values())
        out = {}
        x = (x01 - self.vgg.mean) / self.vgg.std
        for i, layer in enumerate(self.vgg.features):
            x = layer(x)
            if i in wanted:
                out[i] = x
        return out

    def forward(
        self, sr: torch.Tensor, hr: torch.Tensor, pixel_target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`sr` and `hr` in [-1, 1]; `pixel_target` (default `hr`) is what the pixel terms
        compare with (e.g. an unsharp-masked HR). Returns (weighted sum, {term: value})."""
        parts: dict[str, torch.Tensor] = {}
        total = sr.new_zeros((), dtype=torch.float32)
        target = hr if pixel_target is None else pixel_target
        for name in PIXEL_TERMS:
            if name in self.terms:
                fn = F.mse_loss if name == "mse" else F.l1_loss
                parts[name] = fn(sr.float(), target.float())
        if self.vgg is not None:
            with torch.no_grad():
                real = self._vgg_features((hr + 1) * 0.5)
            fake = self._vgg_features((sr + 1) * 0.5)
            s2 = self.vgg_scale * self.vgg_scale
            for name, index in self.vgg_layers.items():
                raw = F.mse_loss(fake[index].float(), real[index].float())
                parts[name] = raw * s2  # == MSE(s * phi(SR), s * phi(HR))
                parts[f"{name}_raw"] = raw.detach()
        for name, weight in self.terms.items():
            total = total + weight * parts[name]
        return total, parts


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(LR)) (the paper's non-saturating form), as BCE-with-logits against 1."""
    ones = torch.ones_like(fake_logits, dtype=torch.float32)
    return F.binary_cross_entropy_with_logits(fake_logits.float(), ones)


def discriminator_loss(
    real_logits: torch.Tensor | None = None, fake_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """BCE of D on real (label 1) and/or generated (label 0) images, summed over those given
    (the trainer passes them one at a time, each pass with its own backward)."""
    terms = []
    if real_logits is not None:
        ones = torch.ones_like(real_logits, dtype=torch.float32)
        terms.append(F.binary_cross_entropy_with_logits(real_logits.float(), ones))
    if fake_logits is not None:
        zeros = torch.zeros_like(fake_logits, dtype=torch.float32)
        terms.append(F.binary_cross_entropy_with_logits(fake_logits.float(), zeros))
    if not terms:
        raise ValueError("discriminator_loss needs real or fake logits")
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def discriminator_features(
    disc: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One pass through the SRGAN Discriminator returning (logits, activations after each
    LeakyReLU of its feature stack), for the feature-matching term."""
    feats = []
    h = x
    for layer in disc.features:
        h = layer(h)
        if isinstance(layer, nn.LeakyReLU):
            feats.append(h)
    logits = disc.classifier(disc.pool(h)).squeeze(1)
    return logits, feats


def feature_matching_loss(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of L1(D_l(SR), D_l(HR)), HR features as constants.

    Not in the SRGAN paper: a perceptual signal for the offline (no-VGG) variant, taken from
    the discriminator that is being trained anyway (Salimans et al. 2016 match batch means;
    like pix2pixHD we match per-sample features, which keeps the sharpness it rewards).
    """
    terms = [F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fake, real, strict=True)]
    return torch.stack(terms).mean()


def local_variance(x: torch.Tensor, window: int) -> torch.Tensor:
    """Per-pixel variance over a `window` x `window` neighbourhood (reflect-padded, so the
    output keeps x's size), per channel: E[x^2] - E[x]^2 from two box filters."""
    pad = window // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(padded, window, stride=1)
    return (F.avg_pool2d(padded * padded, window, stride=1) - mean * mean).clamp_min(0)


def artifact_map(hr: torch.Tensor, sr: torch.Tensor, sr_ema: torch.Tensor,
                 window: int = 7) -> torch.Tensor:
    """Where SR likely holds GAN artefacts, per pixel (LDL: Liang et al., CVPR 2022).

    Artefacts are unstable, noisy residuals: high *local variance* of |HR - SR| (summed over
    channels, over `window` x `window`, unbiased), scaled by the image's residual variance to
    the 1/5 power (busy images tolerate more), and kept only where the EMA generator does
    better than the current one (the stable weights did not make that detail). Images in
    [-1, 1], computed in [0, 1] like the paper; the map is a weight, so it carries no gradient.
    """
    with torch.no_grad():
        hr01, sr01, ema01 = ((t.float() + 1) * 0.5 for t in (hr, sr, sr_ema))
        residual = (hr01 - sr01).abs().sum(1, keepdim=True)
        residual_ema = (hr01 - ema01).abs().sum(1, keepdim=True)
        n = window * window
        local_var = local_variance(residual, window) * (n / (n - 1))  # unbiased, as in LDL
        image_var = residual.var(dim=(1, 2, 3), keepdim=True) ** 0.2
        return image_var * local_var * (residual >= residual_ema)


def artifact_loss(hr: torch.Tensor, sr: torch.Tensor, sr_ema: torch.Tensor) -> torch.Tensor:
    """L1 between SR and HR weighted by `artifact_map` (in [0, 1] units, as in LDL): pulls
    the generator back to HR where it paints unstable texture, leaves true detail alone."""
    weight = artifact_map(hr, sr, sr_ema)
    return (weight * (sr.float() - hr.float()).abs()).mean() * 0.5


def flat_region_weight(hr: torch.Tensor, window: int = 7, tau: float = 0.01) -> torch.Tensor:
    """Near 1 where the HR image is locally flat, near 0 on texture and edges:
    exp(-s / tau), s the local standard deviation (over `window` x `window`, in [0, 1]
    units, the channels' mean). On Set14 about a tenth of face's pixels weigh over 0.5 and
    almost none of baboon's."""
    with torch.no_grad():
        var = local_variance((hr.float() + 1) * 0.5, window)
        return torch.exp(-var.mean(1, keepdim=True).sqrt() / tau)


def flat_mse_loss(hr: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
    """Pixel MSE ([-1, 1] units, like the content MSE) weighted by `flat_region_weight`: an
    adversarial generator paints streaks on flat regions, which cost the plain MSE little;
    this term makes such regions expensive and leaves textured ones to the discriminator."""
    return (flat_region_weight(hr) * (sr.float() - hr.float()) ** 2).mean()


def _gaussian_1d(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return (g / g.sum()).to(device=like.device, dtype=like.dtype)


def gaussian_blur(x: torch.Tensor, sigma: float, size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) `x`, each channel on its own, same size out:
    reflect padding (replicate where the image is no larger than the radius). `size`
    defaults to 2 * ceil(4 * sigma) + 1 taps, the kernel's mass beyond 4 sigma left out."""
    size = 2 * math.ceil(4 * sigma) + 1 if size is None else size
    g = _gaussian_1d(size, sigma, x)
    c, pad = x.shape[1], size // 2
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    x = F.pad(x, (pad, pad, pad, pad), mode=mode)
    x = F.conv2d(x, g.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, g.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def highpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x - gaussian_blur(x, sigma): the detail finer than about sigma pixels; a constant
    colour, a gradual shift of colour or brightness and broad halos are (nearly) removed."""
    return x - gaussian_blur(x, sigma)


def unsharp_mask(x: torch.Tensor, weight: float = 0.5, threshold: float = 10 / 255,
                 size: int = 51) -> torch.Tensor:
    """Real-ESRGAN's sharpened training targets: x + weight * (x - blur(x)) where the detail
    exceeds `threshold` (a soft mask), x elsewhere, so the network learns crisper edges
    without being asked to invent noise on flat regions. `x` in [0, 1], (B, C, H, W); the
    blur is OpenCV's Gaussian of `size` with its default sigma (8.3 for 51)."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    residual = x - gaussian_blur(x, sigma, size)
    mask = (residual.abs() > threshold).to(x.dtype)
    soft = gaussian_blur(mask, sigma, size)
    sharp = (x + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * x
