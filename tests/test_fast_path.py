"""The fast inference path: folded BatchNorm, batched uniform tiles, quantised output written
tile by tile, the byte-identical writer and the overlapped folder pipeline."""

import threading
import tracemalloc

import numpy as np
import pytest
import torch
from helpers import SHARED, smooth_image, tiny_generator, with_bn_statistics
from PIL import Image, ImageCms

from srgan import cpu, fuse, imageio
from srgan.commands.pipeline import overlapped
from srgan.fuse import (
    CpuBf16SRResNet,
    count_batchnorms,
    fold_batchnorm,
    fold_output_range,
    inference_model,
)
from srgan.imageio import ImageData, QuantizedImage, read_image, to_array, write_image
from srgan.inference import Upscaler, output_buffer, plan_tiles
from srgan.inference.batches import quantize_batch
from srgan.nets import SRResNet


def reference(net, x):
    with torch.no_grad():
        return net.to_unit(net(x))


def as_batch(img):
    return torch.from_numpy(img).permute(2, 0, 1)[None]


# --------------------------------------------------------------------------- folding
def test_batchnorm_folding_is_exact_and_leaves_the_callers_net_alone():
    net = with_bn_statistics(tiny_generator(blocks=2, channels=16))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fused = inference_model(net)
    assert count_batchnorms(net) == 5 and count_batchnorms(fused) == 0
    assert net.training and all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    x = torch.rand(2, 3, 13, 17)
    net.eval()
    ref = reference(net, x)
    with torch.no_grad():
        got = fused(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == ref.shape
    assert (got - ref).abs().max() < 1e-5
    # guard: the statistics matter, so a fold that ignored them would fail
    plain = tiny_generator(blocks=2, channels=16)
    assert (reference(plain, x) - ref).abs().max() > 1e-3


def test_prelus_run_in_place_with_the_same_values():
    net = with_bn_statistics(tiny_generator(blocks=3, channels=16))
    with torch.no_grad():  # distinct, non-default slopes: a mixed-up slope would show
        for i, m in enumerate(m for m in net.modules() if isinstance(m, torch.nn.PReLU)):
            m.weight.fill_(0.05 + 0.07 * i)
    fused = inference_model(net)
    assert not any(isinstance(m, torch.nn.PReLU) for m in fused.modules())
    assert any(isinstance(m, torch.nn.PReLU) for m in net.modules())  # the caller's: kept
    x = torch.rand(2, 3, 13, 17) * 2 - 0.5  # negative inputs reach the activations too
    with torch.no_grad():
        got = fused(x.contiguous(memory_format=torch.channels_last))
    assert (got - reference(net, x)).abs().max() < 1e-5


def test_upsampling_in_row_chunks_is_exact(monkeypatch):
    from srgan import fuse

    net = with_bn_statistics(tiny_generator(blocks=2, channels=16))
    x = torch.rand(2, 3, 37, 11)
    whole = inference_model(net, chunk_px=None)
    chunked = inference_model(net, chunk_px=2 * 11 * 14)  # 8-row chunks + 3 rows each side
    with torch.no_grad():
        ref = whole(x)
        assert (chunked(x) - ref).abs().max() < 1e-5
        assert (ref - reference(net, x)).abs().max() < 1e-5
        monkeypatch.setattr(fuse, "RECONSTRUCT_CONTEXT", 0)  # guard: the overlap matters
        assert (chunked(x) - ref).abs().max() > 1e-4


def test_output_range_folds_into_the_last_conv_or_wraps():
    net = with_bn_statistics(tiny_generator())
    model = fold_batchnorm(net)
    folded = fold_output_range(model, -1.0, 1.0)
    assert folded is model and folded.output_range == (0.0, 1.0)  # into the weights
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert (folded(x) - reference(net, x)).abs().max() < 1e-5

    class EndsInAct(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.act = torch.nn.PReLU()

        def forward(self, x):
            return self.act(self.conv(x))

    m = EndsInAct().eval()
    wrapped = fold_output_range(fold_batchnorm(m), -1.0, 1.0)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), (m(x) + 1) / 2, atol=1e-6)


def test_bf16_keeps_the_last_conv_in_fp32():
    net = with_bn_statistics(tiny_generator())
    model = inference_model(net, torch.bfloat16)
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        y = model(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last))
    assert y.dtype == torch.float32
    assert (y - reference(net, x)).abs().max() < 0.02  # bf16 body, fp32 tail


def test_tail_runs_before_the_last_shuffle_with_the_same_values():
    net = with_bn_statistics(tiny_generator(blocks=2, channels=16))
    model = inference_model(net)
    tail = model.net.tail
    assert tail.conv.in_channels == 64 and tail.conv.out_channels == 12  # 16*4 -> 3*4
    assert tail.conv.kernel_size == (5, 5)
    assert isinstance(model.net.upsample[-1].shuffle, torch.nn.Identity)
    x = torch.rand(2, 3, 11, 14)
    with torch.no_grad():
        got = model(x.contiguous(memory_format=torch.channels_last))
    assert (got - reference(net, x)).abs().max() < 1e-5  # borders included
    # a per-channel PReLU does not commute with the shuffle: that net keeps its tail
    per_channel = with_bn_statistics(tiny_generator(blocks=1, channels=8))
    per_channel.upsample[-1].act = torch.nn.PReLU(8)
    kept = inference_model(per_channel)
    assert isinstance(kept.net.tail, torch.nn.Conv2d) and kept.net.tail.kernel_size == (9, 9)
    with torch.no_grad():
        y = kept(x.contiguous(memory_format=torch.channels_last))
    assert (y - reference(per_channel, x)).abs().max() < 1e-5


def test_cpu_bf16_mix_keeps_the_input_stream_and_ends_in_fp32():
    net = with_bn_statistics(SRResNet(), seed=4)
    model = inference_model(net, torch.bfloat16, cpu_mix=True, chunk_px=600)
    mix = model.net
    assert isinstance(mix, CpuBf16SRResNet)
    first_block = [mix.body[0].conv1, mix.body[0].conv2]
    f32 = [mix.head[0], *first_block, mix.up_first.conv, mix.tail.conv]
    assert all(c.weight.dtype == torch.float32 for c in f32)
    bf16 = [m for m in mix.modules() if isinstance(m, torch.nn.Conv2d) and
            all(m is not c for c in f32)]
    assert len(bf16) == 32 and all(c.weight.dtype == torch.bfloat16 for c in bf16)
    x = torch.from_numpy(smooth_image(20, 30, seed=5)).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = model(x.contiguous(memory_format=torch.channels_last))  # float32 in, in chunks
        plain = inference_model(net, torch.bfloat16)(x.contiguous(
            memory_format=torch.channels_last))
    ref = reference(net, x)
    assert y.dtype == torch.float32
    mixed_err, plain_err = (y - ref).abs().max(), (plain - ref).abs().max()
    assert 0 < mixed_err < plain_err  # bf16 ran, and the fp32 parts make it closer


def _photographs(names: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """LR inputs (MATLAB bicubic x1/4 of the HR photo, as `srgan benchmark` makes them)."""
    from srgan.resize import imresize

    out = []
    for name in names:
        for f in sorted((SHARED / "data" / "benchmark" / name).glob("*.png")):
            hr = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
            hr = hr[:, :hr.shape[1] // 4 * 4, :hr.shape[2] // 4 * 4]
            lr = imresize(hr.contiguous(), scale=0.25).permute(1, 2, 0).numpy()
            out.append((f.name, np.ascontiguousarray(lr)))
    return out


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is absent")
def test_cpu_bf16_is_within_one_level_of_fp32_on_photographs_with_the_shipped_weights(
        monkeypatch):
    """The bound `auto` is allowed bf16 under (docs/performance.md has the numbers)."""
    from srgan import cpu

    images = _photographs(("Set5", "Set14"))
    assert len(images) == 19
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    exact = Upscaler.from_pretrained("srresnet_x4", device="cpu", precision="fp32")
    fast = Upscaler.from_pretrained("srresnet_x4", device="cpu", precision="auto")
    assert fast.dtype == torch.bfloat16  # emulated, slowly, where the CPU lacks bf16
    differ = total = 0
    for name, lr in images:
        a = exact.upscale(QuantizedImage(lr)).pixels.astype(int)
        b = fast.upscale(QuantizedImage(lr)).pixels.astype(int)
        assert np.abs(a - b).max() <= 1, name
        differ, total = differ + int((a != b).sum()), total + a.size
    assert 0 < differ / total < 0.2  # measured 4.6%: bf16 ran


# --------------------------------------------------------------------------- tiles
@pytest.mark.parametrize("h,w,tile,pad", [(70, 130, 32, 5), (40, 150, 32, 24), (20, 9, 8, 24),
                                          (64, 64, 64, 8), (33, 100, 10, 3), (16, 90, 40, 24)])
def test_uniform_windows_have_one_size_and_contain_their_context(h, w, tile, pad):
    tiles = plan_tiles(h, w, tile, pad, uniform=True)
    owned = np.zeros((h, w), int)
    sizes = {(t.py1 - t.py0, t.px1 - t.px0) for t in tiles}
    assert len(sizes) == 1
    for t in tiles:
        owned[t.y0:t.y1, t.x0:t.x1] += 1
        assert 0 <= t.py0 <= max(0, t.y0 - pad) and min(h, t.y1 + pad) <= t.py1 <= h
        assert 0 <= t.px0 <= max(0, t.x0 - pad) and min(w, t.x1 + pad) <= t.px1 <= w
    assert (owned == 1).all()
    if tile + 2 * pad >= h:
        assert all(t.y0 == 0 and t.y1 == h for t in tiles)  # no identical windows twice


def test_fast_path_is_within_one_level_of_the_fp32_reference_on_the_paper_network():
    torch.manual_seed(3)
    net = with_bn_statistics(SRResNet(), seed=3)
    img = smooth_image(16, 90, seed=2)
    ref = reference(net, as_batch(img)).clamp(0, 1)
    up = Upscaler(net, device="cpu", tile=40)
    assert up.batch_size(1, 16, 90) == 3  # three tiles in one forward pass
    fast = up.upscale(as_batch(img))
    assert (fast - ref).abs().max() <= 1 / 255
    q = up.upscale(ImageData(img), bits=8)
    ref8 = np.floor(ref[0].permute(1, 2, 0).numpy() * 255 + 0.5)
    assert q.pixels.dtype == np.uint8
    assert np.abs(q.pixels.astype(int) - ref8).max() <= 1


def test_batching_does_not_change_the_result():
    net = with_bn_statistics(tiny_generator(blocks=2, channels=16))
    x = as_batch(smooth_image(40, 60))
    one = Upscaler(net, device="cpu", tile=16, tile_pad=12, batch=1).upscale(x)
    up = Upscaler(net, device="cpu", tile=16, tile_pad=12, batch=5)
    assert len(up.iter_tiles(40, 60)) == 12 and up.batch_size(1, 40, 60) == 5
    many = up.upscale(x)
    assert (one - many).abs().max() < 1e-5
    assert (one - reference(net, x).clamp(0, 1)).abs().max() <= 1 / 255


def test_progress_counts_every_tile_once():
    up = Upscaler(tiny_generator(), device="cpu", tile=16, batch=4)
    seen = []
    up.upscale(smooth_image(40, 50, 4), progress=seen.append)
    n = up.tiles_for(40, 50, 4)
    assert n == 2 * len(up.iter_tiles(40, 50)) and sum(seen) == n and max(seen) <= 4


class Spy(torch.nn.Module):
    """A fused model whose every forward pass goes through `hook(input, output)`."""

    def __init__(self, inner: torch.nn.Module, hook) -> None:
        super().__init__()
        self.inner, self.hook = inner, hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hook(x, self.inner(x))


def test_progress_on_the_cpu_reports_each_batch_as_soon_as_it_is_computed(monkeypatch):
    """A server's progress bar and ETA lagged a whole tile behind (each batch was reported
    only after the next one had been computed, the last two at once)."""
    computed, seen = [], []
    build = fuse.inference_model
    monkeypatch.setattr(fuse, "inference_model", lambda *a, **k: Spy(
        build(*a, **k), lambda x, y: (computed.append(len(x)), y)[1]))
    up = Upscaler(tiny_generator(), device="cpu", precision="fp32", tile=16, tile_pad=4,
                  batch=1)
    up.upscale(smooth_image(40, 50, 3), progress=lambda n: seen.append(sum(computed)))
    assert up.tiles_for(40, 50) == 12 and seen == list(range(1, 13))


def test_non_finite_half_output_is_redone_in_fp32(monkeypatch):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    net = tiny_generator()  # fp32: `good` must be the exact path the fallback runs
    x = as_batch(smooth_image(20, 60))
    good = Upscaler(net, device="cpu", precision="fp32", tile=16, tile_pad=4,
                    batch=2).upscale(x)
    calls = []
    build = fuse.inference_model

    def overflowing(t, y):  # stands in for half precision that overflowed on one batch
        calls.append(t.shape[0])
        return y * float("inf") if len(calls) == 1 else y

    def half_that_overflows(model, dtype, **options):
        if dtype == torch.float32:
            return build(model, dtype, **options)
        return Spy(build(model, torch.float32, chunk_px=options["chunk_px"]), overflowing)

    monkeypatch.setattr(fuse, "inference_model", half_that_overflows)
    up = Upscaler(net, device="cpu", precision="bf16", tile=16, tile_pad=4, batch=2)
    assert len(up.iter_tiles(20, 60)) == 8 and up.runs_half()
    redone = up.upscale(x)
    assert up.fp32_fallbacks == 2 and calls == [2, 2, 2, 2]
    assert torch.equal(redone, good)


def test_onnxruntime_backend_matches_torch():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = with_bn_statistics(tiny_generator(blocks=2, channels=16))
    x = as_batch(smooth_image(30, 41))
    ort = Upscaler(net, device="cpu", tile=16, backend="onnxruntime").upscale(x)
    torch_fp32 = Upscaler(net, device="cpu", precision="fp32", tile=16).upscale(x)
    assert (ort - torch_fp32).abs().max() < 1e-4
    with pytest.raises(ValueError, match="backend"):
        Upscaler(net, device="cpu", backend="tensorrt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision,compile", [("fp16", False), ("fp16", True), ("bf16", False)])
def test_cuda_fast_path_within_one_level(precision, compile):
    net = with_bn_statistics(tiny_generator(blocks=2, channels=16))
    x = as_batch(smooth_image(60, 90))
    ref = Upscaler(net, device="cpu", precision="fp32").upscale(x)
    up = Upscaler(net, device="cuda", precision=precision, tile=24, compile=compile)
    assert up.batch_size(1, 60, 90) > 1
    assert (up.upscale(x) - ref).abs().max() <= 1 / 255
    q = up.upscale(ImageData(x[0].permute(1, 2, 0).numpy()), bits=8)
    assert np.abs(q.pixels.astype(int) - to_array(ImageData(ref[0].permute(1, 2, 0).numpy()))
                  .astype(int)).max() <= 1


# --------------------------------------------------------------------------- quantised
@pytest.mark.parametrize("channels,bits", [(3, 8), (1, 8), (2, 8), (4, 8), (3, 16), (4, 16)])
def test_quantized_output_equals_the_float_path_rounded(channels, bits):
    up = Upscaler(tiny_generator(blocks=2, channels=16), device="cpu", tile=16)
    px = smooth_image(21, 30, channels)
    if channels in (2, 4):
        px[..., -1] = np.linspace(0, 1, 30)[None, :]  # partly transparent
    data = ImageData(px, bit_depth=bits, icc_profile=b"icc", exif=None)
    q = up.upscale(data, bits=bits)
    want = to_array(up.upscale(data), np.uint8 if bits == 8 else np.uint16)
    assert q.pixels.dtype == want.dtype and q.pixels.shape == want.shape == (84, 120, channels)
    assert np.abs(q.pixels.astype(int) - want.astype(int)).max() <= 1
    assert q.icc_profile == b"icc" and q.bit_depth == bits
    back = q.to_image_data()
    assert np.array_equal(to_array(back, want.dtype), q.pixels)


@pytest.mark.parametrize("channels,bits,opaque", [(3, 8, True), (1, 8, True), (4, 8, True),
                                                   (4, 8, False), (2, 16, True), (3, 16, True)])
def test_integer_input_gives_exactly_the_float_inputs_result(channels, bits, opaque):
    up = Upscaler(tiny_generator(blocks=2, channels=16), device="cpu", tile=16)
    top = 255 if bits == 8 else 65535
    ints = np.round(smooth_image(21, 30, channels) * top).astype(np.uint8 if bits == 8
                                                                   else np.uint16)
    if channels in (2, 4):
        ints[..., -1] = top if opaque else np.linspace(0, top, 30)[None, :]
    ints.flags.writeable = False  # as Pillow hands them over
    q_in = QuantizedImage(ints, bits, icc_profile=b"icc")
    from_ints = up.upscale(q_in)
    from_floats = up.upscale(q_in.to_image_data(), bits=bits)
    assert from_ints.pixels.dtype == from_floats.pixels.dtype
    assert np.array_equal(from_ints.pixels, from_floats.pixels)
    assert from_ints.icc_profile == b"icc" and from_ints.bit_depth == bits


def test_integer_input_is_never_held_as_floats():
    up = Upscaler(tiny_generator(), device="cpu", tile=32)
    ints = np.round(smooth_image(256, 256) * 255).astype(np.uint8)
    in_float = ints.size * 4
    tracemalloc.start()
    try:
        up.upscale(QuantizedImage(ints))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out_bytes = ints.size * 16
    # the uint8 output plus per-tile pieces; a float copy of the input would add in_float
    assert peak < out_bytes + in_float // 2, (peak, out_bytes, in_float)


def test_quantize_rounds_like_imageio():
    y = torch.tensor([-0.5, 0.0, 0.5 / 255, 0.499, 1.0, 7.0, float("nan"), float("inf")])
    y = y.view(1, 1, 1, -1)
    ours = quantize_batch(y, 8)[0, 0, :, 0].numpy()
    theirs = imageio.quantize(y[0, 0, 0].numpy(), 8)
    assert np.array_equal(ours, theirs)
    assert np.array_equal(quantize_batch(y, 16)[0, 0, :, 0].numpy(), imageio.quantize(
        y[0, 0, 0].numpy(), 16))


def test_opaque_alpha_stays_opaque_and_costs_no_second_pass():
    up = Upscaler(tiny_generator(), device="cpu")
    px = smooth_image(8, 9, 4)
    px[..., 3] = 1
    seen = []
    q = up.upscale(ImageData(px), bits=8, progress=seen.append)
    assert (q.pixels[..., 3] == 255).all() and sum(seen) == 1


def test_quantized_path_never_holds_a_float_copy_of_the_output():
    up = Upscaler(tiny_generator(), device="cpu", tile=32)
    data = ImageData(smooth_image(96, 96))
    out_float = 384 * 384 * 3 * 4
    tracemalloc.start()
    try:
        q = up.upscale(data, bits=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert q.pixels.nbytes == out_float // 4
    # numpy allocations are traced: the uint8 output and small per-tile pieces only
    assert peak < q.pixels.nbytes + out_float // 4, peak


def test_huge_outputs_spill_to_a_memory_mapped_file(tmp_path):
    buf = output_buffer((40, 50, 3), np.uint8, spill_bytes=1000, spill_dir=tmp_path)
    assert isinstance(buf, np.memmap) and buf.shape == (40, 50, 3)
    assert list(tmp_path.iterdir()) == []  # already unlinked: nothing left behind
    assert not isinstance(output_buffer((4, 5, 3), np.uint8, spill_bytes=1000), np.memmap)
    data = ImageData(smooth_image(20, 30))
    in_ram = Upscaler(tiny_generator(), device="cpu", tile=16).upscale(data, bits=8).pixels
    up = Upscaler(tiny_generator(), device="cpu", tile=16, spill_bytes=0)
    spilled = up.upscale(data, bits=8, spill_dir=tmp_path)
    assert isinstance(spilled.pixels, np.memmap)
    assert np.array_equal(np.asarray(spilled.pixels), in_ram)


# --------------------------------------------------------------------------- writer
def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> bytes:
    e = Image.Exif()
    e[0x010F] = "srgan test"
    return e.tobytes()


@pytest.mark.parametrize(
    "ext,channels,bits",
    [(".png", 3, 8), (".png", 1, 8), (".png", 2, 8), (".png", 4, 8), (".png", 3, 16),
     (".png", 1, 16), (".png", 4, 16), (".jpg", 3, 8), (".jpg", 1, 8), (".webp", 3, 8),
     (".webp", 2, 8), (".webp", 4, 8), (".jpg", 4, 8), (".bmp", 3, 8), (".webp", 3, 16),
     (".bmp", 4, 8), (".jpg", 4, 16), (".jpg", 3, 16), (".tif", 1, 16), (".tif", 3, 8),
     (".tif", 4, 16)],
)
def test_quantized_pixels_make_the_same_file_as_float_pixels(tmp_path, ext, channels, bits):
    rng = np.random.default_rng(channels * bits)
    top = 255 if bits == 8 else 65535
    arr = rng.integers(0, top + 1, (13, 17, channels)).astype(np.uint8 if bits == 8
                                                                 else np.uint16)
    q = QuantizedImage(arr, bits, icc_profile=_icc() if channels > 2 else None, exif=_exif())
    ours, theirs = tmp_path / f"a{ext}", tmp_path / f"b{ext}"
    lossy = (ext in (".jpg", ".bmp") and channels == 4) or (
        bits == 16 and ext != ".png" and not (ext == ".tif" and channels == 1))
    with pytest.warns(imageio.ImageWarning) if lossy else _no_warning():
        write_image(q, ours)
    with pytest.warns(imageio.ImageWarning) if lossy else _no_warning():
        write_image(q.to_image_data(), theirs)
    assert ours.read_bytes() == theirs.read_bytes()
    if ext == ".png":
        back = read_image(ours)
        assert np.array_equal(to_array(back, arr.dtype), arr) and back.bit_depth == bits


class _no_warning:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_quantized_writes_refuse_like_float_writes(tmp_path):
    q = QuantizedImage(np.zeros((4, 4, 3), np.uint8))
    target = tmp_path / "x.png"
    target.write_bytes(b"keep")
    with pytest.raises(imageio.ImageWriteError, match="already exists"):
        write_image(q, target)
    assert target.read_bytes() == b"keep"
    write_image(q, target, overwrite=True)
    assert Image.open(target).size == (4, 4)
    with pytest.raises(imageio.ImageWriteError, match="does not exist"):
        write_image(q, tmp_path / "nope" / "x.png")
    with pytest.raises(imageio.ImageWriteError, match="extension"):
        write_image(q, tmp_path / "x.xyz")
    big = QuantizedImage(np.zeros((2, 16384, 3), np.uint8))
    with pytest.raises(imageio.ImageWriteError, match="16383"):
        write_image(big, tmp_path / "big.webp")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        QuantizedImage(np.zeros((4, 4, 3), np.uint16), 8)


# --------------------------------------------------------------------------- folders
def test_overlapped_prefetches_and_saves_behind_and_keeps_going_after_errors():
    loaded_1 = threading.Event()
    saving_0 = threading.Event()
    log = []

    def load(i):
        if i == 1:
            loaded_1.set()
        if i == 2:
            raise OSError("unreadable")
        return i * 10

    def compute(i, x):
        if i == 0:  # the next file is decoded while this one computes
            assert loaded_1.wait(5)
        if i == 1:  # the previous file is encoded while this one computes
            assert saving_0.wait(5)
        if i == 3:
            raise ValueError("bad pixels")
        return x + 1

    def save(i, y):
        if i == 0:
            saving_0.set()
        if i == 4:
            raise OSError("disk full")
        log.append((i, y))

    results = list(overlapped(range(6), load, compute, save))
    assert [i for i, _ in results] == list(range(6))
    errors = {i: type(e).__name__ for i, e in results if e is not None}
    assert errors == {2: "OSError", 3: "ValueError", 4: "OSError"}
    assert sorted(log) == [(0, 1), (1, 11), (5, 51)]
    assert list(overlapped([], load, compute, save)) == []


def test_overlapped_runs_depth_files_ahead_in_order():
    started = [threading.Event() for _ in range(8)]

    def load(i):
        started[i].set()
        return i

    def compute(i, x):
        if i == 0:  # three files ahead are being decoded already
            assert started[3].wait(5)
        return x

    saved = []
    results = list(overlapped(range(8), load, compute, lambda i, y: saved.append(y), depth=3))
    assert results == [(i, None) for i in range(8)] and sorted(saved) == list(range(8))
    with pytest.raises(ValueError):
        list(overlapped(range(2), load, compute, print, depth=0))
