import inspect

import numpy as np
import pytest
import torch
from helpers import smooth_image, tiny_generator
from PIL import Image

from srgan import cpu, fuse
from srgan.imageio import ImageData, from_array
from srgan.inference import Upscaler, fill_transparent, plan_tiles
from srgan.precision import pick_dtype

AVX2_ONLY = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512_NO_BF16 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}
AVX512_BF16 = AVX512_NO_BF16 | {"avx512_bf16"}
AMX = AVX2_ONLY | {"amx_tile", "amx_bf16"}


def cpu_with(monkeypatch, flags):
    """Make srgan see a CPU with these feature flags (what `auto` precision rests on)."""
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))


def whole(net, x):
    with torch.no_grad():
        return net.to_unit(net(x)).clamp(0, 1)


def test_plan_tiles_cover_the_image_exactly_once():
    tiles = plan_tiles(70, 130, tile=32, pad=5)
    owned = np.zeros((70, 130), int)
    for t in tiles:
        owned[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.py0 == max(0, t.y0 - 5) and t.px1 == min(130, t.x1 + 5)
    assert (owned == 1).all()


def test_tiled_equals_untiled_on_an_image_several_tiles_wide():
    net = tiny_generator(blocks=3, channels=16)
    x = torch.from_numpy(smooth_image(40, 150)).permute(2, 0, 1)[None]
    up = Upscaler(net, device="cpu", tile=32)
    assert len(up.iter_tiles(40, 150)) >= 5
    tiled = up.upscale(x)
    assert tiled.shape == (1, 3, 160, 600)
    assert (tiled - whole(net, x)).abs().max() <= 1 / 255


def test_default_pad_is_enough_for_the_paper_size_network():
    from srgan.nets import SRResNet

    torch.manual_seed(1)
    net = SRResNet().eval()
    x = torch.from_numpy(smooth_image(24, 90)).permute(2, 0, 1)[None]
    tiled = Upscaler(net, device="cpu", tile=16).upscale(x)
    assert (tiled - whole(net, x)).abs().max() <= 1 / 255


def test_too_little_context_shows_seams():
    # guards the test above: with no context the result must differ (the test can fail)
    net = tiny_generator(blocks=3, channels=16)
    x = torch.from_numpy(smooth_image(40, 100)).permute(2, 0, 1)[None]
    seamy = Upscaler(net, device="cpu", tile=16, tile_pad=0).upscale(x)
    assert (seamy - whole(net, x)).abs().max() > 1e-4


def test_tta_averages_eight_transforms():
    net = tiny_generator()
    x = torch.from_numpy(smooth_image(12, 17)).permute(2, 0, 1)[None]
    up = Upscaler(net, device="cpu", precision="fp32")
    y = up.upscale(x, tta=True)
    manual = torch.zeros_like(y)
    for rot in range(4):
        for flip in (False, True):
            t = torch.rot90(x, rot, (2, 3))
            t = torch.flip(t, (3,)) if flip else t
            o = net.to_unit(net(t)).detach()
            o = torch.flip(o, (3,)) if flip else o
            manual += torch.rot90(o, -rot, (2, 3)) / 8
    assert torch.allclose(y, manual.clamp(0, 1), atol=1e-5)


def test_half_precision_on_cpu_falls_back_to_fp32(monkeypatch):
    cpu_with(monkeypatch, AVX2_ONLY)
    with pytest.warns(UserWarning, match="fp32"):
        assert pick_dtype("fp16", torch.device("cpu")) == torch.float32
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    with pytest.raises(ValueError):
        pick_dtype("int8", torch.device("cpu"))


@pytest.mark.parametrize(
    "mode,channels", [("RGB", 3), ("L", 1), ("RGBA", 4), ("LA", 2)]
)
def test_pil_modes_round_trip(mode, channels):
    up = Upscaler(tiny_generator(), device="cpu")
    arr = (smooth_image(9, 13, channels) * 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    out = up.upscale(img)
    assert out.mode == mode and out.size == (52, 36)


def test_grey_input_gives_grey_output_equal_to_rgb_mean():
    net = tiny_generator()
    up = Upscaler(net, device="cpu")
    g = smooth_image(10, 10, 1)
    out = up.upscale(g)
    rgb = up.upscale(np.repeat(g, 3, axis=2))
    assert out.shape == (40, 40, 1)
    np.testing.assert_allclose(out[..., 0], rgb.mean(axis=2), atol=1e-6)


def test_rgb_with_equal_channels_is_upscaled_as_grey_and_stays_rgb():
    # a grey photograph stored as RGB came out tinted (srgan_mse_x4: 4.3% of pixels by > 8)
    up = Upscaler(tiny_generator(), device="cpu")
    g = (smooth_image(12, 10, 1) * 255).astype(np.uint8)
    rgb = np.repeat(g, 3, axis=2)
    grey_out = up.upscale(g[..., 0])
    out = up.upscale(rgb)
    assert out.shape == (48, 40, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()
    np.testing.assert_array_equal(out[..., 0], grey_out)
    img = up.upscale(Image.fromarray(rgb, "RGB"))
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), out)
    q = up.upscale(from_array(rgb), bits=8)
    assert q.pixels.shape == (48, 40, 3) and np.array_equal(q.pixels, out)
    alpha = np.full((12, 10, 1), 255, np.uint8)
    alpha[:4] = 0  # transparent rows: filled, still grey
    rgba = up.upscale(np.concatenate([rgb, alpha], axis=2))
    assert rgba.shape == (48, 40, 4)
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 0] == rgba[..., 2]).all()
    assert (rgba[:16, :, 3] == 0).all() and (rgba[20:, :, 3] == 255).all()
    tinted = rgb.copy()
    tinted[5, 5, 2] ^= 1  # one pixel off grey: a colour image, run as such
    assert not (up.upscale(tinted)[..., 0] == up.upscale(tinted)[..., 2]).all()


def test_numpy_uint16_stays_uint16_and_uint8_stays_uint8():
    up = Upscaler(tiny_generator(), device="cpu")
    a16 = (smooth_image(8, 8) * 65535).astype(np.uint16)
    out16 = up.upscale(a16)
    assert out16.dtype == np.uint16 and out16.shape == (32, 32, 3)
    # more than 256 distinct levels: the 16-bit path is not quantised to 8 bits
    assert len(np.unique(out16)) > 256
    out8 = up.upscale((smooth_image(8, 8, 1)[..., 0] * 255).astype(np.uint8))
    assert out8.dtype == np.uint8 and out8.shape == (32, 32)


def test_tensor_in_tensor_out_and_outscale():
    up = Upscaler(tiny_generator(), device="cpu")
    x = torch.rand(3, 10, 12)
    assert up.upscale(x).shape == (3, 40, 48)
    assert up.upscale(x, outscale=2).shape == (3, 20, 24)
    data = ImageData(smooth_image(10, 12))
    assert up.upscale(data, outscale=3.5).pixels.shape == (35, 42, 3)


def test_transparent_pixels_do_not_bleed_black_into_edges():
    colour = np.zeros((16, 16, 3), np.float32)
    colour[:, :8] = (0.2, 0.8, 0.3)  # visible green left half, hidden black right half
    alpha = np.zeros((16, 16), np.float32)
    alpha[:, :8] = 1
    filled = fill_transparent(colour, alpha)
    np.testing.assert_allclose(filled[:, :8], colour[:, :8], atol=1e-6)
    np.testing.assert_allclose(filled[:, 8:], np.broadcast_to((0.2, 0.8, 0.3), (16, 8, 3)),
                               atol=1e-5)


def test_rgba_alpha_is_upscaled_by_the_model_and_aligned():
    up = Upscaler(tiny_generator(), device="cpu")
    px = np.ones((16, 16, 4), np.float32) * 0.5
    px[..., 3] = 0
    px[4:12, 4:12, 3] = 1
    px[6:10, 6:10, 3] = 0.5  # partly transparent: the model's alpha shows there
    # the x8 ensemble makes any network flip-equivariant: a symmetric alpha must stay
    # symmetric, which fails if alpha is shifted against the colour grid
    out = up.upscale(px, tta=True)
    assert out.shape == (64, 64, 4)
    a = out[..., 3]
    np.testing.assert_allclose(a, a[::-1, ::-1], atol=1e-5)
    np.testing.assert_allclose(a, a.T, atol=1e-5)
    alone = up.upscale(px[..., 3:], tta=True)[..., 0]
    np.testing.assert_allclose(a[24:40, 24:40], alone[24:40, 24:40], atol=1e-5)


def test_cpu_defaults(monkeypatch):
    cpu_with(monkeypatch, AVX2_ONLY)
    up = Upscaler(tiny_generator(), device="cpu")
    assert up.device.type == "cpu" and up.dtype == torch.float32 and up.tile >= 64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_matches_fp32_within_one_level():
    net = tiny_generator()
    x = torch.from_numpy(smooth_image(40, 50)).permute(2, 0, 1)[None]
    ref = Upscaler(net, device="cpu").upscale(x)
    fast = Upscaler(net, device="cuda", precision="fp16").upscale(x)
    assert (ref - fast).abs().max() <= 1 / 255


def test_options_are_checked_and_pass_through_from_pretrained(tiny_model_path):
    net = tiny_generator()
    with pytest.raises(ValueError, match="batch"):
        Upscaler(net, device="cpu", batch=0)
    with pytest.raises(ValueError, match="tile"):
        Upscaler(net, device="cpu", tile=4)
    up = Upscaler.from_pretrained(tiny_model_path, device="cpu", tile=16, batch=3)
    assert up.batch == 3 and up.tile == 16 and up.batch_size(1, 64, 64) <= 3
    # a bigger memory budget gives bigger tiles (the default budget is bounded, see fuse)
    small = Upscaler(net, device="cpu", memory_budget_mb=64)
    big = Upscaler(net, device="cpu", memory_budget_mb=1024)
    assert 64 <= small.tile < big.tile and (small.budget_mb, big.budget_mb) == (64, 1024)


# --------------------------------------------------------------------------- issue 18
def _rgba(dtype, h=20, w=30):
    top = np.iinfo(dtype).max
    colour = (smooth_image(h, w) * top).astype(dtype)
    alpha = np.zeros((h, w), dtype)
    alpha[5:15, 8:22] = top
    alpha[9:11, 12:14] = top // 2
    return np.dstack([colour, alpha])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("outscale", [None, 2.0, 3.0])
def test_transparent_and_opaque_pixels_keep_their_alpha_exactly(dtype, outscale):
    # item 6: alpha 0 became 1..49 around edges (a visible frame and halo), 255 became less
    from srgan.imageio import QuantizedImage

    up = Upscaler(tiny_generator(), device="cpu")
    img = _rgba(dtype)
    top = np.iinfo(dtype).max
    results = [up.upscale(img, outscale=outscale)]
    if outscale is None:
        q = QuantizedImage(img, 8 if dtype == np.uint8 else 16, None, None, "PNG", [], None)
        results.append(up.upscale(q).pixels)
    for out in results:
        oh, ow = out.shape[:2]
        iy = np.minimum(((np.arange(oh) + 0.5) * 20 / oh).astype(int), 19)
        ix = np.minimum(((np.arange(ow) + 0.5) * 30 / ow).astype(int), 29)
        src = img[..., 3][iy][:, ix]
        assert (out[..., 3][src == 0] == 0).all()
        assert (out[..., 3][src == top] == top).all()
        half = out[..., 3][src == top // 2]
        assert half.size and (half > 0).all() and (half < top).all()  # the model's own


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_tiny_images_keep_their_colour(size):
    # item 7: 1x1 and 2x2 images came out flat grey (~118) whatever their colour
    up = Upscaler.from_pretrained("srresnet_x4", device="cpu")
    for colour in ((200, 40, 90), (10, 220, 30)):
        img = np.empty((size, size, 3), np.uint8)
        img[...] = colour
        out = up.upscale(img)
        assert out.shape == (4 * size, 4 * size, 3)
        assert np.abs(out.astype(int) - colour).max() <= 12, out.reshape(-1, 3).mean(0)


def test_empty_images_are_a_clear_error():
    # item 16: ZeroDivisionError
    up = Upscaler(tiny_generator(), device="cpu")
    for shape in ((0, 0, 3), (0, 5, 3), (4, 0, 4)):
        with pytest.raises(ValueError, match="empty image"):
            up.upscale(np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match="empty image"):
        up.upscale(torch.zeros(1, 3, 0, 7))


def test_negative_tile_pad_is_refused():
    # item 13
    with pytest.raises(ValueError, match="tile_pad"):
        Upscaler(tiny_generator(), device="cpu", tile_pad=-1)


def test_all_non_finite_output_is_an_error():
    # item 8: a model that gives NaN everywhere made black images with exit status 0
    from srgan.inference import NonFiniteOutputError

    net = tiny_generator()
    with torch.no_grad():
        net.tail.bias.fill_(float("nan"))
    up = Upscaler(net, device="cpu")
    with pytest.raises(NonFiniteOutputError):
        up.upscale(np.zeros((10, 12, 3), np.uint8))


def test_cuda_on_a_cpu_only_torch_is_a_clear_error(monkeypatch):
    # item 10: an AssertionError traceback from torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cpu"):
        Upscaler(tiny_generator(), device="cuda")


# ------------------------------------------------------------------ precision on the CPU
@pytest.mark.parametrize("flags", [AVX2_ONLY, AVX512_NO_BF16, frozenset()],
                         ids=["avx2", "avx512-no-bf16", "unknown"])
def test_auto_never_picks_bf16_on_a_cpu_without_native_bf16(monkeypatch, flags):
    cpu_with(monkeypatch, flags)
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    up = Upscaler(tiny_generator(), device="cpu", precision="auto")
    assert up.dtype == torch.float32 and not up.runs_half()
    with pytest.warns(UserWarning, match="using fp32"):  # asked for, but emulated: refused
        assert pick_dtype("bf16", torch.device("cpu")) == torch.float32


@pytest.mark.parametrize("flags", [AVX512_BF16, AMX], ids=["avx512_bf16", "amx"])
def test_auto_picks_the_bf16_mix_where_the_cpu_has_native_bf16(monkeypatch, flags):
    from srgan.fuse import CpuBf16SRResNet

    cpu_with(monkeypatch, flags)
    assert pick_dtype("auto", torch.device("cpu")) == torch.bfloat16
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    net = tiny_generator(blocks=2, channels=16)
    built = []
    build = fuse.inference_model
    monkeypatch.setattr(fuse, "inference_model",
                        lambda *a, **k: built.append(build(*a, **k)) or built[-1])
    up = Upscaler(net, device="cpu", precision="auto", tile=16)
    assert up.dtype == torch.bfloat16 and up.runs_half()
    assert isinstance(built[-1].net, CpuBf16SRResNet)
    exact = Upscaler(net, device="cpu", precision="fp32", tile=16)  # forces the exact path
    assert exact.dtype == torch.float32 and not exact.runs_half()
    x = torch.from_numpy(smooth_image(30, 41)).permute(2, 0, 1)[None]
    ref = whole(net, x)
    assert (exact.upscale(x) - ref).abs().max() < 1e-5
    err = (up.upscale(x) - ref).abs().max().item()
    assert 0 < err < 2 / 255  # bf16 arithmetic really ran, and stayed close


def test_benchmark_and_compare_run_fp32_unless_told(monkeypatch, tiny_model_path):
    """Tables stay exact on CPUs where `auto` would pick bf16."""
    from srgan.commands import evaluate as command
    from srgan.evaluate.benchmark import run_benchmark
    from srgan.evaluate.methods import load_methods

    cpu_with(monkeypatch, AVX512_BF16)
    for name in ("benchmark", "compare"):
        option = next(p for p in getattr(command, name).params if p.name == "precision")
        assert option.default == "fp32"
    assert inspect.signature(run_benchmark).parameters["precision"].default == "fp32"
    _, net = load_methods([tiny_model_path], device="cpu")
    assert net.upscaler.dtype == torch.float32 and not net.upscaler.runs_half()
    _, net = load_methods([tiny_model_path], device="cpu", precision="auto")
    assert net.upscaler.dtype == torch.bfloat16  # told otherwise
