"""The realistic degradation model: each operator against an independent reference, the
recipe's distribution against its probabilities, determinism, and the training set that uses
it (worker processes, exact resume)."""

from __future__ import annotations

import io
import math
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from srgan import degrade as dg
from srgan.data import ImageBank, RealisticTrainingSet, TrainingSet, degrade_batch


def _photo(h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth-plus-texture test image in [0, 1], (3, H, W)."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.4 * np.sin(6 * x + c) * np.cos(4 * y) for c in range(3)])
    return torch.from_numpy(np.clip(base + 0.05 * g.standard_normal((3, h, w)), 0, 1)).float()


# ------------------------------------------------------------------------------ kernels


@pytest.mark.parametrize("make", [
    lambda: dg.gaussian_kernel(21, 2.0, 0.7, 0.6),
    lambda: dg.generalized_kernel(15, 1.5, 2.5, -1.0, 0.6),
    lambda: dg.plateau_kernel(11, 1.2, 1.2, 0.0, 1.5),
    lambda: dg.circular_lowpass_kernel(13, math.pi / 2),
])
def test_kernels_sum_to_one_and_are_point_symmetric(make):
    k = make()
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)


def test_isotropic_gaussian_is_the_outer_product_of_1d_gaussians():
    ax = np.arange(-10, 11)
    g = np.exp(-(ax**2) / (2 * 1.7**2))
    ref = np.outer(g, g) / np.outer(g, g).sum()
    np.testing.assert_allclose(dg.gaussian_kernel(21, 1.7, 1.7), ref, atol=1e-14)


def test_anisotropic_gaussian_has_the_rotated_covariance():
    sx, sy, theta = 2.0, 0.8, 0.5
    k = dg.gaussian_kernel(21, sx, sy, theta)
    ax = np.arange(21) - 10
    xx, yy = np.meshgrid(ax, ax)
    cov = np.array([[np.sum(k * xx * xx), np.sum(k * xx * yy)],
                    [np.sum(k * xx * yy), np.sum(k * yy * yy)]])
    r = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    np.testing.assert_allclose(cov, r @ np.diag([sx**2, sy**2]) @ r.T, atol=1e-3)


def test_generalized_kernel_with_beta_one_is_the_gaussian_and_plateau_has_its_formula():
    np.testing.assert_allclose(dg.generalized_kernel(13, 1.3, 2.1, 0.4, 1.0),
                               dg.gaussian_kernel(13, 1.3, 2.1, 0.4), atol=1e-14)
    k = dg.plateau_kernel(9, 1.5, 1.5, 0.0, 2.0)
    ax = np.arange(9) - 4
    xx, yy = np.meshgrid(ax, ax)
    ref = 1 / (((xx**2 + yy**2) / 1.5**2) ** 2 + 1)
    np.testing.assert_allclose(k, ref / ref.sum(), atol=1e-14)


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """J1 from its integral (1/pi) int_0^pi cos(t - x sin t) dt: independent of torch."""
    t = np.linspace(0, math.pi, 20001)
    return np.trapezoid(np.cos(t[None] - x.reshape(-1, 1) * np.sin(t[None])), t, axis=1
                        ).reshape(x.shape) / math.pi


def test_sinc_kernel_is_the_jinc_and_cuts_off_at_its_frequency():
    cutoff = math.pi / 2  # 0.25 cycles per pixel
    k = dg.circular_lowpass_kernel(21, cutoff)
    ax = np.arange(21) - 10.0
    r = np.hypot(*np.meshgrid(ax, ax))
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.where(r == 0, cutoff**2 / (4 * math.pi),
                       cutoff * _bessel_j1(cutoff * r) / (2 * math.pi * r))
    np.testing.assert_allclose(k, ref / ref.sum(), atol=1e-8)
    response = np.abs(np.fft.fft2(k, (256, 256)))
    freq = np.fft.fftfreq(256)
    assert response[0, freq == 0.0].item() == pytest.approx(1.0)
    assert response[0, np.argmin(abs(freq - 0.1))] > 0.9  # passband
    assert response[0, np.argmin(abs(freq - 0.45))] < 0.1  # stopband


def test_random_kernels_follow_the_round_and_are_padded_to_21():
    rng = np.random.default_rng(1)
    r = dg.DegradationParams().rounds()[0]
    kinds = Counter()
    for _ in range(600):
        kind, k = dg.random_kernel(rng, r)
        kinds[kind] += 1
        assert k.shape == (21, 21) and k.sum() == pytest.approx(1.0)
        if kind != "sinc":
            assert (k >= 0).all()  # the Gaussian family never rings
    assert 30 < kinds["sinc"] < 95  # 10% of 600
    assert kinds["iso"] > kinds["aniso"] > kinds["generalized_aniso"]


# ------------------------------------------------------------------------------ operators


def test_filter2d_is_a_reflect_padded_convolution():
    img = _photo(20, 17)
    k = dg.gaussian_kernel(7, 1.0, 2.0, 0.3) + np.arange(49).reshape(7, 7) * 1e-3  # asymmetric
    out = dg.filter2d(img, k).numpy()
    padded = np.pad(img.numpy().astype(np.float64), ((0, 0), (3, 3), (3, 3)), mode="reflect")
    ref = np.zeros_like(img.numpy(), dtype=np.float64)
    for i in range(7):
        for j in range(7):  # a true convolution: the kernel is flipped
            ref += k[6 - i, 6 - j] * padded[:, i:i + 20, j:j + 17]
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_jpeg_round_trip_equals_pillows():
    img = _photo(40, 48)
    u8 = img.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=37)
    ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    out = dg.jpeg(img, 37).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(out, u8)  # it did compress


def test_gaussian_noise_has_its_sigma_and_grey_noise_is_shared_by_the_channels():
    flat = torch.full((3, 200, 200), 0.5)
    colour = dg.gaussian_noise(flat, np.random.default_rng(0), 0.05, gray=False) - 0.5
    assert colour.mean().item() == pytest.approx(0.0, abs=2e-3)
    assert colour.std().item() == pytest.approx(0.05, rel=0.02)
    assert not torch.equal(colour[0], colour[1])
    grey = dg.gaussian_noise(flat, np.random.default_rng(0), 0.05, gray=True) - 0.5
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_poisson_noise_variance_grows_with_intensity():
    ramp = torch.linspace(0, 1, 256).repeat(3, 256, 1)  # 256 levels: 256 'photons' per unit
    noisy = dg.poisson_noise(ramp, np.random.default_rng(0), 1.0, gray=False)
    noise = (noisy - ramp)[0]
    for lo, hi in ((0.2, 0.3), (0.7, 0.8)):
        cols = (ramp[0, 0] >= lo) & (ramp[0, 0] < hi)
        v = ramp[0, 0, cols].mean().item()
        assert noise[:, cols].mean().item() == pytest.approx(0.0, abs=3e-3)
        assert noise[:, cols].var().item() == pytest.approx(v / 256, rel=0.1)


def test_resize_gives_the_size_and_refuses_unknown_modes():
    img = _photo(30, 20)
    for mode in dg.RESIZE_MODES:
        assert dg.resize(img, (11, 45), mode).shape == (3, 11, 45)
    with pytest.raises(ValueError, match="nearest"):
        dg.resize(img, (5, 5), "nearest")


# ------------------------------------------------------------------------------ the model


def test_a_recipes_choices_follow_their_probabilities():
    rng = np.random.default_rng(3)
    n = 3000
    recipes = [dg.draw_recipe(rng, (96, 96), 4) for _ in range(n)]
    share = lambda pred: sum(map(pred, recipes)) / n  # noqa: E731
    assert share(lambda r: r.first.blur != "none") == 1.0
    assert share(lambda r: r.second.blur != "none") == pytest.approx(0.8, abs=0.03)
    assert share(lambda r: r.first.blur == "sinc") == pytest.approx(0.1, abs=0.02)
    assert share(lambda r: r.first.resize == "down") == pytest.approx(0.7, abs=0.03)
    assert share(lambda r: r.second.resize == "keep") == pytest.approx(0.3, abs=0.03)
    assert share(lambda r: r.first.noise == "gaussian") == pytest.approx(0.5, abs=0.03)
    assert share(lambda r: r.second.gray_noise) == pytest.approx(0.4, abs=0.03)
    assert share(lambda r: r.final_sinc is not None) == pytest.approx(0.8, abs=0.03)
    assert share(lambda r: r.jpeg_first) == pytest.approx(0.5, abs=0.03)
    qualities = [r.first.quality for r in recipes] + [r.final_quality for r in recipes]
    assert min(qualities) == 30 and max(qualities) == 95
    sigmas = [r.first.noise_level * 255 for r in recipes if r.first.noise == "gaussian"]
    assert min(sigmas) >= 1 and max(sigmas) <= 30
    sizes = [r.first.size[0] for r in recipes]
    assert min(sizes) >= int(96 * 0.15) and max(sizes) <= int(96 * 1.5)
    assert all(r.second.size[0] <= int(24 * 1.2) for r in recipes)


def test_degrade_patch_is_8_bit_lr_reproducible_under_a_seed():
    hr = _photo(96, 64)
    a = dg.degrade_patch(hr, 4, np.random.default_rng(7))
    b = dg.degrade_patch(hr, 4, np.random.default_rng(7))
    c = dg.degrade_patch(hr, 4, np.random.default_rng(8))
    assert a.shape == (3, 24, 16)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a.mul(255).round(), a.mul(255))  # multiples of 1/255
    assert a.min() >= 0 and a.max() <= 1
    with pytest.raises(ValueError, match="multiple of the scale"):
        dg.degrade_patch(_photo(30, 32), 4, np.random.default_rng(0))


def test_params_check_names_the_bad_key():
    p = dg.DegradationParams(jpeg_range2=[80, 20], sinc_prob=1.5, resize_prob=[0, 0, 0])
    problems = "\n".join(p.check())
    assert "jpeg_range2" in problems and "sinc_prob:" in problems and "resize_prob:" in problems
    assert dg.DegradationParams().check() == []


def test_degrade_batch_depends_only_on_the_seed():
    hr = (torch.stack([_photo(32, 32, s) for s in range(4)]) * 255).round().to(torch.uint8)
    a = degrade_batch(hr.numpy(), 11, 4)
    assert a.shape == (4, 3, 8, 8) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, degrade_batch(hr.numpy(), 11, 4))
    np.testing.assert_array_equal(a[1:], degrade_batch(hr.numpy(), 11, 4)[1:])
    assert not np.array_equal(a, degrade_batch(hr.numpy(), 12, 4))


# ------------------------------------------------------------------------------ the data


def _set(workers: int, seed: int = 5) -> RealisticTrainingSet:
    images = [(np.asarray(_photo(80, 72, s).permute(1, 2, 0)) * 255).astype(np.uint8)
              for s in range(3)]
    bank = ImageBank.pack(images, ["a", "b", "c"], torch.device("cpu"))
    return RealisticTrainingSet(TrainingSet(bank, 32, 4, seed=seed), workers=workers)


def test_realistic_set_gives_the_same_batches_inline_and_in_a_worker_and_resumes_exactly():
    inline, pooled = _set(0), _set(1)
    try:
        first = [inline.batch(4) for _ in range(2)]
        state = inline.state_dict()
        later = [inline.batch(4) for _ in range(2)]
        for (lr_a, hr_a), (lr_b, hr_b) in zip(first + later, [pooled.batch(4) for _ in range(4)],
                                                strict=True):
            assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b)
        assert first[0][0].shape == (4, 3, 8, 8) and first[0][1].shape == (4, 3, 32, 32)
        resumed = _set(1, seed=99)  # another seed: the state alone must decide
        resumed.load_state_dict(state)
        for lr_a, hr_a in later:
            lr_b, hr_b = resumed.batch(4)
            assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b)
        resumed.close()
    finally:
        pooled.close()
