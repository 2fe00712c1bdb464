"""`Upscaler.upscale`'s checks: every dtype it promises for NumPy arrays (uint8, uint16,
float32/float64 in [0, 1]) reaches the network scaled to [0, 1] and comes back in its own
dtype; others are refused before any work. And precision's rule that `auto` keeps 16-bit
images on the exact path."""

import numpy as np
import pytest
import torch
from helpers import smooth_image, tiny_generator

from srgan import cpu
from srgan.imageio import ImageData, QuantizedImage
from srgan.inference import Upscaler, check_pixels
from srgan.precision import image_dtype


@pytest.fixture(scope="module")
def net():
    return tiny_generator(blocks=2, channels=16)


@pytest.fixture(scope="module")
def exact(net):
    return Upscaler(net, device="cpu", precision="fp32", tile=16)


def as_dtype(img: np.ndarray, dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.round(img * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(img * 65535).astype(np.uint16)
    return img.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_upscale_scales_every_promised_dtype(exact, dtype, channels):
    base = smooth_image(20, 23, channels)
    pixels = as_dtype(base, dtype)
    top = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1)
    as_float = pixels.astype(np.float32) / top
    out = exact.upscale(pixels)
    assert out.dtype == pixels.dtype and out.shape == (80, 92, channels)
    ref = exact.upscale(as_float.astype(np.float32))
    # rounded to the input's integers; an unscaled integer would be off by ~255x
    assert np.abs(out / top - ref).max() < 1e-5 + (0.5 / top if top > 1 else 0)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint32,
                                   np.bool_, np.complex64])
def test_upscale_refuses_other_dtypes(exact, dtype):
    pixels = np.ones((12, 12, 3), dtype)
    with pytest.raises(TypeError, match=f"array of {np.dtype(dtype)}.*uint8, uint16"):
        exact.upscale(pixels)


@pytest.mark.parametrize("bad, match", [(1.5, r"\[0, 1\], got \[0, 1.5\]"),
                                        (-0.25, r"\[0, 1\], got \[-0.25, 1\]"),
                                        (np.nan, "NaN"), (np.inf, "NaN or infinity")])
def test_upscale_refuses_floats_outside_0_1(exact, bad, match):
    pixels = np.linspace(0, 1, 12 * 12 * 3, dtype=np.float32).reshape(12, 12, 3)
    pixels[3, 4, 1] = bad
    with pytest.raises(ValueError, match=match):
        exact.upscale(pixels)


def test_check_pixels_reports_the_bit_depth():
    assert check_pixels(np.zeros((2, 2), np.uint8)) == 8
    assert check_pixels(np.zeros((2, 2), np.uint16)) == 16
    assert check_pixels(np.zeros((2, 2), np.float64)) == 8
    with pytest.raises(TypeError, match="NumPy array"):
        check_pixels([[0, 1]])


def test_upscale_refuses_integer_tensors(exact):
    with pytest.raises(TypeError, match="float"):
        exact.upscale(torch.zeros(3, 12, 12, dtype=torch.uint8))


# ------------------------------------------------------- auto keeps 16-bit images exact
def test_image_dtype_rule():
    bf16, fp16, fp32 = torch.bfloat16, torch.float16, torch.float32
    assert image_dtype("auto", bf16, 16) == fp32  # 16-bit: bf16 would cost 257 levels
    assert image_dtype("auto", bf16, 8) == bf16
    assert image_dtype("bf16", bf16, 16) == bf16  # asked for: honoured
    assert image_dtype("auto", fp16, 16) == fp16  # GPUs: unchanged
    assert image_dtype("fp32", fp32, 16) == fp32


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))


def test_auto_runs_16_bit_images_in_fp32_and_8_bit_ones_in_bf16(native_bf16, net, exact):
    auto = Upscaler(net, device="cpu", precision="auto", tile=16)
    forced = Upscaler(net, device="cpu", precision="bf16", tile=16)
    assert auto.dtype == forced.dtype == torch.bfloat16
    img = smooth_image(24, 30, 3)
    deep = QuantizedImage(np.round(img * 65535).astype(np.uint16), 16)
    want = exact.upscale(deep).pixels
    assert np.array_equal(auto.upscale(deep).pixels, want)  # the exact path
    as_data = ImageData(deep.pixels.astype(np.float32) / 65535, bit_depth=16)
    assert np.array_equal(auto.upscale(as_data).pixels, exact.upscale(as_data).pixels)
    assert np.array_equal(auto.upscale(deep.pixels), exact.upscale(deep.pixels))
    bf16_error = np.abs(forced.upscale(deep).pixels.astype(int) - want).max()
    assert bf16_error >= 4  # explicit bf16 honoured: it really ran, and lost levels
    shallow = QuantizedImage(np.round(img * 255).astype(np.uint8), 8)
    eight = np.abs(auto.upscale(shallow).pixels.astype(int)
                   - exact.upscale(shallow).pixels).max()
    assert 0 < eight <= 3  # 8-bit images keep the fast bf16 mix under auto


# ------------------------------------------------------------- --outscale's output size
def test_output_size_is_the_one_rule_for_every_outscale_path(exact):
    from srgan.inference import output_size, resize_to

    assert output_size(3, 5, 0.1) == (1, 1)  # never empty
    assert output_size(10, 15, 1.5) == (15, 22)  # round half to even, as Python's round
    assert output_size(7, 9, 2.5) == (18, 22)
    img = smooth_image(7, 9, 3)
    assert resize_to(exact.upscale(img), 7, 9, 2.5).shape == (18, 22, 3)
    tensor = torch.from_numpy(img).permute(2, 0, 1)
    assert exact.upscale(tensor, outscale=2.5).shape == (3, 18, 22)
    assert exact.upscale(ImageData(img), outscale=1.5).pixels.shape[:2] == output_size(7, 9, 1.5)
