"""MATLAB-exact bicubic imresize: reference vectors from Octave, plus batching, dtypes, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan.resize import imresize, modcrop, output_size


def chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.cpu().numpy().transpose(1, 2, 0)


@pytest.mark.parametrize(
    ("key", "src", "scale"),
    [("a_d4", "a", 0.25), ("a_d2", "a", 0.5), ("a_d3", "a", 1 / 3), ("b_u4", "b", 4)],
)
def test_float64_matches_matlab(ref, key, src, scale):
    out = hwc(imresize(chw(ref[src]).double(), scale))
    assert out.shape == ref[key].shape
    assert np.abs(out - ref[key]).max() < 1e-6


@pytest.mark.parametrize(("key", "src", "scale"), [("a_d4_u8", "a", 0.25), ("b_u4_u8", "b", 4)])
def test_uint8_matches_matlab_exactly(ref, key, src, scale):
    out = imresize(chw(ref[src]), scale)
    assert out.dtype == torch.uint8
    np.testing.assert_array_equal(hwc(out), ref[key])


def test_size_argument_equals_scale_when_ratio_is_exact(ref):
    x = chw(ref["b"]).double()
    np.testing.assert_allclose(hwc(imresize(x, size=(132, 116))), ref["b_u4"], atol=1e-9)


def test_float32_path_close_and_keeps_dtype(ref):
    out = imresize(chw(ref["a"]).float(), 0.25)
    assert out.dtype == torch.float32
    assert np.abs(hwc(out).astype(np.float64) - ref["a_d4"]).max() < 1e-4


def test_half_input_returns_half():
    x = torch.rand(3, 10, 12, dtype=torch.float16)
    out = imresize(x, 2)
    assert out.dtype == torch.float16 and out.shape == (3, 20, 24)


def test_batched_equals_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 23, 17, generator=g, dtype=torch.float64) * 255
    batched = imresize(x, 0.25)
    single = torch.stack([imresize(img, 0.25) for img in x])
    assert batched.shape == (4, 3, 6, 5)
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-12)
    # (H, W) input gives the same as one channel of a (C, H, W) input
    torch.testing.assert_close(imresize(x[1, 2], 0.25), batched[1, 2], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("hw", "scale", "expected"),
    [
        ((50, 71), 0.25, (13, 18)),
        ((7, 5), 4, (28, 20)),
        ((11, 13), 1 / 3, (4, 5)),
        ((1, 9), 0.5, (1, 5)),
        ((9, 1), 2, (18, 2)),
    ],
)
def test_output_shapes_odd_sizes(hw, scale, expected):
    assert output_size(hw, scale) == expected
    assert imresize(torch.rand(2, *hw, dtype=torch.float64), scale).shape == (2, *expected)


def test_constant_image_stays_constant():
    x = torch.full((3, 19, 14), 77.25, dtype=torch.float64)
    for scale in (0.25, 1 / 3, 2, 4):
        torch.testing.assert_close(imresize(x, scale), torch.full_like(imresize(x, scale), 77.25))


def test_scale_one_is_identity():
    x = torch.randint(0, 256, (3, 9, 8), dtype=torch.uint8)
    torch.testing.assert_close(imresize(x, 1), x)


def test_uint8_rounds_and_clips():
    # A sharp edge overshoots when upscaled: uint8 output must clip, not wrap around.
    x = torch.zeros(1, 8, 8, dtype=torch.uint8)
    x[:, :, 4:] = 255
    out = imresize(x, 4)
    ref = imresize(x.double(), 4)
    assert ref.max() > 255 and ref.min() < 0
    torch.testing.assert_close(out, torch.floor(ref + 0.5).clamp(0, 255).to(torch.uint8))


def test_uint16_path():
    x = torch.randint(0, 65536, (3, 12, 10), dtype=torch.int32).to(torch.uint16)
    out = imresize(x, 0.5)
    assert out.dtype == torch.uint16 and out.shape == (3, 6, 5)
    expect = torch.floor(imresize(x.double(), 0.5) + 0.5).clamp(0, 65535)
    assert torch.equal(out.double(), expect)


def test_no_antialias_differs_when_downscaling():
    x = torch.rand(1, 32, 32, dtype=torch.float64)
    assert not torch.allclose(imresize(x, 0.25), imresize(x, 0.25, antialias=False))
    torch.testing.assert_close(imresize(x, 2), imresize(x, 2, antialias=False))


def test_bad_arguments():
    x = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, 2, size=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        imresize(x, -1)
    with pytest.raises(TypeError, match="dtype"):
        imresize(x.to(torch.int64), 2)


def test_modcrop_torch_and_numpy():
    t = torch.zeros(2, 3, 50, 71)
    assert modcrop(t, 4).shape == (2, 3, 48, 68)
    a = np.zeros((50, 71, 3), np.uint8)
    assert modcrop(a, 4).shape == (48, 68, 3)
    assert modcrop(np.zeros((50, 71)), 3).shape == (48, 69)
    with pytest.raises(TypeError):
        modcrop([[1]], 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(ref):
    x = chw(ref["a"])
    np.testing.assert_array_equal(hwc(imresize(x.cuda(), 0.25)), ref["a_d4_u8"])
    out = imresize(x.cuda().double(), 0.25)
    assert out.is_cuda
    assert np.abs(hwc(out) - ref["a_d4"]).max() < 1e-6
    cpu32 = imresize(x.float(), 0.25)
    torch.testing.assert_close(imresize(x.cuda().float(), 0.25).cpu(), cpu32, rtol=0, atol=1e-3)
