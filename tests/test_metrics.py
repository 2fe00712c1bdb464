"""Metrics: reference vectors (Octave rgb2ycbcr, scikit-image SSIM), properties, paper SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srgan.metrics import psnr, psnr_rgb, psnr_y, rgb_to_y, ssim, ssim_paper, ssim_y


def noisy_pair(h: int, w: int, sigma: float = 12.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A smooth RGB image and a noisy copy, uint8 H x W x 3."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None]
    img = np.clip(base + np.array([0, 20, -20]), 0, 255).round().astype(np.uint8)
    noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)
    return img, noisy


def chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


# ------------------------------------------------------------------ reference vectors


def test_rgb_to_y_matches_matlab(ref):
    y = rgb_to_y(ref["a"])
    assert y.shape == ref["a_y"].shape and y.dtype == np.float64
    assert np.abs(y - ref["a_y"]).max() < 1e-10
    yt = rgb_to_y(chw(ref["a"]))  # torch, channel-first
    assert np.abs(yt.numpy() - ref["a_y"]).max() < 1e-10


def test_psnr_y_matches_reference(ref):
    assert abs(psnr_y(ref["a"], ref["a_noisy"], crop_border=4) - ref["psnr_y_crop4"]) < 1e-6


def test_ssim_y_matches_reference(ref):
    assert abs(ssim_y(ref["a"], ref["a_noisy"], crop_border=4) - ref["ssim_y_crop4"]) < 1e-6


def test_psnr_rgb_matches_reference(ref):
    assert abs(psnr_rgb(ref["a"], ref["a_noisy"]) - ref["psnr_rgb"]) < 1e-6


def test_torch_inputs_give_the_same_scores(ref):
    a, b = chw(ref["a"]), chw(ref["a_noisy"])
    assert abs(psnr_y(a, b, 4) - ref["psnr_y_crop4"]) < 1e-6
    assert abs(ssim_y(a.float(), b.float(), 4) - ref["ssim_y_crop4"]) < 1e-6
    # a batch of one scores as the single image
    assert abs(ssim_y(a[None], b[None], 4) - ref["ssim_y_crop4"]) < 1e-12


# ------------------------------------------------------------------------ properties


def test_identical_images():
    img, _ = noisy_pair(40, 30)
    assert psnr_y(img, img) == math.inf
    assert psnr_rgb(img, img, crop_border=2) == math.inf
    assert ssim_y(img, img, crop_border=4) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_psnr_known_value():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + np.uint8(5)  # MSE 25
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)
    assert psnr(a, b, peak=1.0) == pytest.approx(20 * math.log10(1 / 5), abs=1e-12)


def test_crop_border_only_looks_inside():
    a = np.zeros((20, 20), np.float64)
    b = a.copy()
    b[:2, :] = 50  # differs only in the top two rows
    assert psnr(a, b, crop_border=2) == math.inf
    assert psnr(a, b, crop_border=1) < 100


def test_grey_images_are_scored_as_they_are():
    img, noisy = noisy_pair(30, 30)
    g, gn = img[..., 1], noisy[..., 1]
    assert psnr_y(g, gn) == psnr(g, gn)
    assert ssim_y(g, gn, 3) == ssim(g, gn, 3)
    assert psnr_y(g[..., None], gn[..., None]) == psnr(g, gn)


def test_ssim_symmetric_and_decreasing_with_noise():
    img, n1 = noisy_pair(48, 40, sigma=5)
    _, n2 = noisy_pair(48, 40, sigma=25)
    assert ssim_y(img, n1) == pytest.approx(ssim_y(n1, img), abs=1e-12)
    assert 1 > ssim_y(img, n1) > ssim_y(img, n2) > 0
    assert psnr_y(img, n1) > psnr_y(img, n2)


def test_multichannel_ssim_is_mean_of_channels():
    img, noisy = noisy_pair(32, 32)
    per_channel = [ssim(img[..., c], noisy[..., c]) for c in range(3)]
    assert ssim(img, noisy) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_errors():
    img, noisy = noisy_pair(20, 20)
    with pytest.raises(ValueError, match="shape"):
        psnr(img, noisy[:10])
    with pytest.raises(ValueError, match="crop_border"):
        psnr(img, noisy, crop_border=10)
    with pytest.raises(ValueError, match="11x11"):
        ssim(img[:10, :10], noisy[:10, :10])
    with pytest.raises(ValueError, match="channels"):
        psnr_y(np.zeros((8, 8, 4)), np.zeros((8, 8, 4)))
    with pytest.raises(ValueError, match="H x W x 3"):
        rgb_to_y(np.zeros((8, 8)))
    with pytest.raises(TypeError):
        psnr([[1.0]], [[1.0]])


def _ssim_wang_naive(x: np.ndarray, y: np.ndarray) -> float:
    """`ssim_index.m` written out: the 11x11 Gaussian window (sigma 1.5, summing to 1) at
    every position where it fits in the image, the local SSIM there, their mean."""
    t = np.arange(11) - 5.0
    g = np.exp(-t * t / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def local_mean(a: np.ndarray) -> np.ndarray:
        return (np.lib.stride_tricks.sliding_window_view(a, (11, 11)) * win).sum((-2, -1))

    mx, my = local_mean(x), local_mean(y)
    vx, vy = local_mean(x * x) - mx * mx, local_mean(y * y) - my * my
    cxy = local_mean(x * y) - mx * my
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


@pytest.mark.parametrize("shape", [(40, 36), (2060, 16)])
def test_ssim_matches_its_definition_written_out(shape):
    """Both ways SSIM filters (banded matmuls up to 2048 px a side, conv2d above) give the
    values of the window slid over the image."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, shape).astype(np.float64)
    y = np.clip(x + rng.normal(0, 20, shape), 0, 255).round()
    assert ssim(x, y) == pytest.approx(_ssim_wang_naive(x, y), abs=1e-12)


# --------------------------------------------------------------------------- paper SSIM


def test_ssim_paper_tiny_hand_computed():
    # 2x2 image: sigma = 2 * 1.5 / 256 gives a one-tap window, so each pixel's SSIM is the
    # luminance term (2xy + C1) / (x^2 + y^2 + C1), all pixels weighted equally.
    x = np.array([[10, 20], [30, 40]], np.uint8)
    y = np.array([[10, 20], [30, 50]], np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (3 + (2 * 40 * 50 + c1) / (40**2 + 50**2 + c1)) / 4
    assert ssim_paper(x, y) == pytest.approx(expected, abs=1e-14)


def _ssim_paper_naive(x: np.ndarray, y: np.ndarray, taps: tuple[int, ...]) -> float:
    """The documented convention written out directly, with daala's integer kernel `taps`:
    per pixel, the 2-D window clipped to the image and renormalised, then a mean weighted by
    the window's used weight."""
    h, w = x.shape
    k = np.array(taps, np.float64)
    r = len(k) // 2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    num = den = 0.0
    for i in range(h):
        for j in range(w):
            i0, i1, j0, j1 = max(i - r, 0), min(i + r + 1, h), max(j - r, 0), min(j + r + 1, w)
            win = np.outer(k[i0 - i + r : i1 - i + r], k[j0 - j + r : j1 - j + r])
            wsum = win.sum()
            px, py = x[i0:i1, j0:j1], y[i0:i1, j0:j1]
            mx, my = (win * px).sum() / wsum, (win * py).sum() / wsum
            vx = (win * px * px).sum() / wsum - mx * mx
            vy = (win * py * py).sum() / wsum - my * my
            cxy = (win * px * py).sum() / wsum - mx * my
            s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            num += wsum * s
            den += wsum
    return num / den


@pytest.mark.parametrize("shape, taps", [
    # sigma = height * 1.5 / 256; taps round(256 * N(c; sigma)) for c = 1, 2, ... while the
    # unrounded tap is >= 0.5, at most min(H, W) - 1 a side; the centre takes the rest of 256
    ((256, 12), (2, 9, 28, 55, 68, 55, 28, 9, 2)),  # sigma 1.5 (c = 5 would be 0.3 < 0.5)
    ((120, 14), (3, 53, 144, 53, 3)),  # sigma 0.70: a 5-tap window
    ((512, 3), (27, 32, 138, 32, 27)),  # sigma 3.0, capped at 2 taps a side
    ((2060, 6), (8, 8, 8, 8, 8, 176, 8, 8, 8, 8, 8)),  # capped, and filtered by conv2d
])
def test_ssim_paper_matches_the_convention_written_out(shape, taps):
    assert sum(taps) == 256
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, shape).astype(np.float64)
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).round()
    assert ssim_paper(x, y) == pytest.approx(_ssim_paper_naive(x, y, taps), abs=1e-12)


def test_ssim_paper_properties():
    img, noisy = noisy_pair(256, 64)  # height 256: sigma 1.5, like Wang's window
    assert ssim_paper(img, img) == 1.0
    p, w = ssim_paper(img, noisy), ssim_y(img, noisy)
    assert p == pytest.approx(ssim_paper(noisy, img), abs=1e-12)
    assert 0 < p < 1 and p != w
    assert abs(p - w) < 0.02  # same sigma here: close, but borders and 8-bit Y differ
    # 8-bit samples: RGB goes to Y rounded to integers, then is scored as a grey image
    y8, n8 = (np.floor(rgb_to_y(v) + 0.5).astype(np.uint8) for v in (img, noisy))
    assert ssim_paper(y8, n8) == pytest.approx(p, abs=1e-12)
    assert ssim_paper(rgb_to_y(img), rgb_to_y(noisy)) == pytest.approx(p, abs=1e-12)
    # torch channel-first input gives the same
    assert ssim_paper(chw(img), chw(noisy)) == pytest.approx(p, abs=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(ref):
    a, b = chw(ref["a"]), chw(ref["a_noisy"])
    assert abs(ssim_y(a.cuda(), b.cuda(), 4) - ref["ssim_y_crop4"]) < 1e-6
    assert abs(psnr_y(a.cuda(), b.cuda(), 4) - ref["psnr_y_crop4"]) < 1e-6
    assert ssim_paper(a.cuda(), b.cuda()) == pytest.approx(ssim_paper(a, b), abs=1e-12)
