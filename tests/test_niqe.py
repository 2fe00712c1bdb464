"""NIQE: the MATLAB-anchored test vectors, the fits it is built from, and its failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srgan import metrics
from srgan.niqe import (
    NiqeModel,
    _aggd_fit,
    default_model,
    gaussian_window,
    luminance,
    niqe,
    niqe_features,
)
from srgan.resize import imresize

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
VECTORS = SHARED / "testvectors" / "niqe"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is absent")


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A natural-looking 8-bit RGB image: 1/f noise (the spectrum of photographs)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w))
    planes = []
    for _ in range(3):
        phase = np.exp(2j * np.pi * rng.random((h, w)))
        p = np.real(np.fft.ifft2(amp * phase))
        planes.append((p - p.mean()) / p.std())
    img = 128 + 40 * np.stack(planes, axis=2)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, factor: int) -> np.ndarray:
    """Down and up again by MATLAB bicubic: the blur of bicubic super-resolution."""
    t = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    small = imresize(t, scale=1.0 / factor)
    return imresize(small, size=img.shape[:2]).permute(1, 2, 0).numpy()


# ------------------------------------------------------------------ MATLAB-anchored vectors
@needs_shared
def test_matches_the_expected_scores_of_the_test_vectors():
    """Scores of MATLAB's niqe (via a reference reproducing it on baboon) to about 1e-3;
    measured: all within 6e-5, baboon within 1e-6 of MATLAB R2021a."""
    expected = json.loads((VECTORS / "expected.json").read_text())
    assert len(expected["images"]) == 7
    model = NiqeModel.from_npz(VECTORS / "niqe_pris_params.npz")
    for name, want in expected["images"].items():
        rgb = np.asarray(Image.open(SHARED / "data" / "benchmark" / name).convert("RGB"))
        assert niqe(rgb, model=model) == pytest.approx(want, abs=2e-4), name
    baboon = np.asarray(Image.open(SHARED / "data/benchmark/Set14/baboon.png").convert("RGB"))
    assert niqe(baboon) == pytest.approx(5.72957338, abs=1e-5)  # MATLAB R2021a's niqe()


@needs_shared
def test_shipped_model_and_window_are_the_published_ones():
    with np.load(VECTORS / "niqe_pris_params.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(default_model().mu, z["mu_pris_param"].reshape(-1))
        np.testing.assert_array_equal(default_model().cov, z["cov_pris_param"])
        np.testing.assert_allclose(gaussian_window(), z["gaussian_window"], rtol=0, atol=1e-15)


# ------------------------------------------------------------------ the algorithm's parts
def test_window_is_matlab_fspecial_7_by_7_sigma_7_6():
    w = gaussian_window()
    assert w.shape == (7, 7) and w.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.array_equal(w, w.T) and np.array_equal(w, w[::-1, ::-1])
    assert w[3, 3] / w[3, 6] == pytest.approx(np.exp(9 / (2 * (7 / 6) ** 2)))
    assert w[3, 6] / w[3, 5] == pytest.approx(np.exp(-(9 - 4) / (2 * (7 / 6) ** 2)))


def test_mscn_is_imfilter_replicate_with_the_7x7_window():
    from srgan.niqe import mscn

    x = np.random.default_rng(2).integers(0, 256, (20, 23)).astype(np.float64)
    w = gaussian_window()
    pad = np.pad(x, 3, mode="edge")  # imfilter 'replicate', computed the direct way
    mu = np.array([[np.sum(w * pad[i:i + 7, j:j + 7]) for j in range(23)] for i in range(20)])
    var = np.array([[np.sum(w * pad[i:i + 7, j:j + 7] ** 2) for j in range(23)]
                    for i in range(20)]) - mu**2
    coeffs, sigma = mscn(x)
    np.testing.assert_allclose(sigma, np.sqrt(np.abs(var)), atol=1e-9)
    np.testing.assert_allclose(coeffs, (x - mu) / (np.sqrt(np.abs(var)) + 1), atol=1e-12)
    flat, _ = mscn(np.full((16, 16), 77.0))
    assert not flat.any()  # exactly 0, not rounding noise


def test_aggd_fit_recovers_the_shape_of_known_distributions():
    rng = np.random.default_rng(1)
    n = 200_000
    gauss = rng.normal(0, 2.0, n)
    laplace = rng.laplace(0, 1.0, n)
    alpha, left, right = _aggd_fit(np.stack([gauss, laplace]))
    assert alpha[0] == pytest.approx(2.0, abs=0.05)  # a Gaussian is a GGD of shape 2
    assert alpha[1] == pytest.approx(1.0, abs=0.05)  # a Laplacian has shape 1
    # GGD scale beta = sigma * sqrt(Gamma(1/a) / Gamma(3/a)) = sigma * sqrt(2) for a = 2
    assert left[0] == pytest.approx(2.0 * np.sqrt(2), rel=0.03)
    assert right[0] == pytest.approx(2.0 * np.sqrt(2), rel=0.03)
    skewed = np.concatenate([-np.abs(rng.normal(0, 1, n)), np.abs(rng.normal(0, 3, n))])
    _, left, right = _aggd_fit(skewed[None])
    assert right[0] / left[0] == pytest.approx(3.0, rel=0.03)  # the two sides apart


def test_features_are_36_per_block_at_two_scales():
    y = luminance(_texture(200, 300))
    f = niqe_features(y)
    assert f.shape == (2 * 3, 36)  # 200x300 holds 2x3 blocks of 96; the rest is cut off
    assert np.isfinite(f).all()
    alphas = f[:, [0, 2, 6, 10, 14, 18, 20, 24, 28, 32]]
    assert (alphas >= 0.2).all() and (alphas <= 10).all()


# ------------------------------------------------------------------ properties
def test_blur_scores_worse_than_the_sharp_image():
    sharp = _texture(192, 288)
    s = niqe(sharp)
    b2, b4 = niqe(_blur(sharp, 2)), niqe(_blur(sharp, 4))
    assert s < b2 < b4, (s, b2, b4)
    assert b4 - s > 2


def test_noise_scores_worse_than_the_clean_image():
    clean = _texture(192, 192, seed=3)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255)
    assert niqe(noisy.round().astype(np.uint8)) > niqe(clean) + 1


def test_layouts_and_dtypes_agree():
    img = _texture(192, 200, seed=4)
    s = niqe(img)
    assert niqe(torch.from_numpy(img).permute(2, 0, 1)) == s  # the metrics' tensor layout
    assert niqe(img.astype(np.float32)) == s
    assert metrics.niqe is niqe
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 7, np.uint8)], axis=2)
    assert niqe(rgba) == s  # alpha ignored
    y = luminance(img)  # grey input is scored as it is: the Y plane gives the same score
    assert niqe(y) == s and niqe(y[:, :, None]) == s
    assert np.array_equal(y, np.round(y)) and y.min() >= 16 and y.max() <= 235


def test_crop_border_removes_pixels_before_the_block_grid():
    img = _texture(200, 200, seed=5)
    assert niqe(img, crop_border=4) == niqe(img[4:-4, 4:-4])
    assert niqe(img, crop_border=4) != niqe(img)


def test_flat_areas_do_not_depend_on_rounding_noise():
    """A flat area's MSCN is exactly 0; rounding noise there must not move the score (it
    moved Set5 head's by 0.37 before it was snapped)."""
    img = luminance(_texture(192, 192, seed=6))
    img[:96, :] = 80.0  # half the image flat, like a studio background
    s = niqe(img)
    f = niqe_features(img)
    flat_rows = np.isnan(f).any(axis=1)
    assert flat_rows.sum() == 2 and np.isfinite(s)  # the flat blocks: no AGGD scales (NaN)
    assert f[flat_rows, 0].tolist() == [0.2, 0.2]  # MATLAB's min over NaN: the grid's first
    noise = np.random.default_rng(0).uniform(-1e-9, 1e-9, img.shape)
    assert niqe(img + noise) == pytest.approx(s, abs=1e-9)


def test_one_block_is_scored_with_zero_distortion_covariance():
    assert np.isfinite(niqe(_texture(96, 96, seed=7)))


# ------------------------------------------------------------------ failure modes
@pytest.mark.parametrize("shape", [(95, 200, 3), (200, 95, 3), (10, 10), (0, 0, 3)])
def test_images_smaller_than_one_block_are_refused(shape):
    with pytest.raises(ValueError, match="smaller than one 96x96 block"):
        niqe(np.zeros(shape, np.uint8))


def test_other_bad_inputs_give_clear_errors():
    img = _texture(100, 100)
    with pytest.raises(ValueError, match="smaller than one 96x96 block"):
        niqe(img, crop_border=4)  # 92x92 is left
    with pytest.raises(ValueError, match="leaves nothing"):
        niqe(img, crop_border=50)
    with pytest.raises(ValueError, match="crop_border must be >= 0"):
        niqe(img, crop_border=-1)
    with pytest.raises(ValueError, match="grey or RGB"):
        niqe(np.zeros((100, 100, 5)))
    with pytest.raises(TypeError, match="numpy.ndarray or torch.Tensor"):
        niqe([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="non-finite"):
        niqe(np.full((100, 100), np.nan))
    with pytest.raises(ValueError, match="flat image"):
        niqe(np.full((192, 192), 100.0))


def test_model_files_are_checked_and_never_unpickled(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu_pris_param=np.zeros(36))
    with pytest.raises(ValueError, match="not a NIQE model.*cov_pris_param"):
        NiqeModel.from_npz(bad)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mu_pris_param=np.array([object()]), cov_pris_param=np.eye(36))
    with pytest.raises(ValueError, match="cannot read the NIQE model"):
        NiqeModel.from_npz(pickled)
    shape = tmp_path / "shape.npz"
    np.savez(shape, mu_pris_param=np.zeros(18), cov_pris_param=np.eye(18))
    with pytest.raises(ValueError, match=r"mu \(36,\)"):
        NiqeModel.from_npz(shape)
    with pytest.raises(ValueError, match="cannot read"):
        NiqeModel.from_npz(tmp_path / "missing.npz")
