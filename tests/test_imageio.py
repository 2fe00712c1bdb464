"""Image file layer: modes, 16-bit, EXIF, ICC, limits, errors, atomic writes, folder search."""

from __future__ import annotations

import io
import os
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import fill_disk
from image_corpus import _exif, cmyk_icc, make_corpus, png_bytes, srgb_icc, tiff_bytes
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from srgan import imageio
from srgan.imageio import (
    ImageData,
    ImageReadError,
    ImageWarning,
    ImageWriteError,
    display_path,
    display_text,
    find_images,
    from_array,
    from_pil,
    png,
    read_image,
    read_quantized,
    resolve_max_pixels,
    to_array,
    to_pil,
    write,
    write_image,
)
from srgan.imageio.metadata import icc_space

RNG = np.random.default_rng(2)


def rand(h: int, w: int, c: int, bits: int = 8) -> np.ndarray:
    return RNG.integers(0, 1 << bits, (h, w, c), dtype=np.uint16 if bits == 16 else np.uint8)


def smooth(h: int, w: int, c: int, bits: int = 8) -> np.ndarray:
    """Gradients plus a little noise: makes the PNG encoder pick different row filters."""
    top = (1 << bits) - 1
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * (k + 1) + y * (3 - k)) / (4 * (w + h)) for k in range(c)]
    arr = np.stack(planes, 2) * top + RNG.normal(0, top / 200, (h, w, c))
    return np.clip(np.rint(arr), 0, top).astype(np.uint16 if bits == 16 else np.uint8)


# --------------------------------------------------------------------------- corpus


def check_case(case) -> list[str]:
    """What is wrong with reading one corpus case (empty list: all as expected)."""
    try:
        data = read_image(case.path)
    except ImageReadError as exc:
        if case.expect != "error":
            return [f"unexpected error: {exc}"]
        problems = []
        if display_path(case.path) not in str(exc):
            problems.append(f"error does not name the file: {exc}")
        if case.error and case.error not in str(exc).lower():
            problems.append(f"error lacks {case.error!r}: {exc}")
        return problems
    except Exception as exc:  # any other type is a bug
        return [f"raised {type(exc).__name__}: {exc}"]
    if case.expect == "error":
        return ["read fine but should have been refused"]
    problems = []
    if data.pixels.dtype != np.float32 or data.pixels.min() < 0 or data.pixels.max() > 1:
        problems.append("pixels not float32 in [0, 1]")
    if case.size and data.size != case.size:
        problems.append(f"size {data.size} != {case.size}")
    if case.channels and data.channels != case.channels:
        problems.append(f"channels {data.channels} != {case.channels}")
    if case.bit_depth and data.bit_depth != case.bit_depth:
        problems.append(f"bit depth {data.bit_depth} != {case.bit_depth}")
    if case.pixels is not None:
        got = to_array(data, case.pixels.dtype).astype(np.int64)
        want = case.pixels.astype(np.int64)
        if case.channels is None:
            got = got[..., : want.shape[2]]
        if got.shape != want.shape:
            problems.append(f"pixel shape {got.shape} != {want.shape}")
        elif np.abs(got - want).max() > case.tolerance:
            problems.append(f"pixels differ by {np.abs(got - want).max()} > {case.tolerance}")
    if case.icc is not None and (data.icc_profile is not None) != case.icc:
        problems.append(f"ICC present: {data.icc_profile is not None}, wanted {case.icc}")
    if case.warning and not any(case.warning in w for w in data.warnings):
        problems.append(f"no warning with {case.warning!r}: {data.warnings}")
    return problems


def test_corpus_every_case_reads_or_fails_cleanly(tmp_path: Path) -> None:
    cases = make_corpus(tmp_path)
    assert len(cases) >= 30
    assert len({c.name for c in cases}) == len(cases)
    report = {c.name: p for c in cases if (p := check_case(c))}
    assert not report, report
    kinds = {c.expect for c in cases}
    assert kinds == {"ok", "error"}


def test_read_quantized_is_read_image_in_integers_for_every_case(tmp_path: Path) -> None:
    for case in make_corpus(tmp_path):
        try:
            full = read_image(case.path)
        except ImageReadError as exc:
            with pytest.raises(ImageReadError) as again:
                read_quantized(case.path)
            assert str(again.value) == str(exc), case.name
            continue
        q = read_quantized(case.path)
        top = 255 if q.bit_depth == 8 else 65535
        assert q.pixels.dtype == (np.uint8 if q.bit_depth == 8 else np.uint16), case.name
        assert (q.bit_depth, q.icc_profile, q.exif, q.source_format, q.warnings) == (
            full.bit_depth, full.icc_profile, full.exif, full.source_format, full.warnings)
        if "float" in case.name:  # float sources are rounded to 16 bits
            assert np.abs(q.pixels / top - full.pixels).max() <= 0.5 / top, case.name
        else:
            assert np.array_equal(q.to_image_data().pixels, full.pixels), case.name


def test_corpus_covers_issue_8_inputs(tmp_path: Path) -> None:
    names = {c.name for c in make_corpus(tmp_path)}
    for needed in ("zero_byte.png", "text_named.png", "truncated.png", "truncated.jpg",
                   "bad_crc.png", "bomb_100000x100000.png", "tiny_1x1.png", "row_37x1.png",
                   "wide_1024x2.png", "rgb16.png", "grey16.png", "la8.png",
                   "rgba_premultiplied_edges.png", "palette_transparency.png", "cmyk.jpg",
                   "progressive.jpg", "animated.gif", "animated.webp", "animated.png",
                   "exif_orientation6.jpg", "icc_srgb.png", "rgb.bmp", "rgb_deflate.tiff",
                   "webp_lossless.webp", "unreadable.png", "symlink_to_image.png"):
        assert needed in names


def test_corpus_is_small(tmp_path: Path) -> None:
    for case in make_corpus(tmp_path):
        if case.expect == "ok" and "aspect" not in case.tags:
            w, h = case.size
            assert w <= 64 and h <= 64, case.name


# --------------------------------------------------------------------------- PNG round trips


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_png_round_trip_exact(tmp_path: Path, channels: int, bits: int) -> None:
    for arr in (rand(13, 17, channels, bits), smooth(40, 33, channels, bits)):
        data = from_array(arr)
        assert data.bit_depth == bits and data.channels == channels
        path = write_image(data, tmp_path / f"x{arr.shape[0]}.png")
        back = read_image(path)
        assert back.bit_depth == bits and back.channels == channels
        np.testing.assert_array_equal(to_array(back, arr.dtype), arr)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_png16_encoder_agrees_with_pillow(tmp_path: Path, channels: int) -> None:
    # Pillow decodes 16-bit colour PNGs to their high bytes: an independent check of our
    # encoder's filters (all five get used on smooth data).
    arr = smooth(50, 61, channels, 16)
    path = write_image(from_array(arr), tmp_path / "x.png")
    with Image.open(path) as im:
        got = np.asarray(im.convert("RGBA" if channels != 3 else "RGB"))
    hi = (arr >> 8).astype(np.uint8)
    if channels == 2:
        np.testing.assert_array_equal(got[..., 0], hi[..., 0])
        np.testing.assert_array_equal(got[..., 3], hi[..., 1])
    else:
        np.testing.assert_array_equal(got, hi)
    raw = path.read_bytes()
    assert raw[24] == 16 and raw[25] == {2: 4, 3: 2, 4: 6}[channels]  # IHDR depth, colour type


def test_png16_grey_is_standard(tmp_path: Path) -> None:
    arr = smooth(9, 7, 1, 16)
    path = write_image(from_array(arr), tmp_path / "g.png")
    with Image.open(path) as im:
        assert im.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(im), arr[:, :, 0])


def test_interlaced_16bit_decodes(tmp_path: Path) -> None:
    arr = smooth(29, 31, 4, 16)
    (tmp_path / "i.png").write_bytes(png_bytes(arr, bit_depth=16, interlace=True))
    np.testing.assert_array_equal(to_array(read_image(tmp_path / "i.png"), np.uint16), arr)


def test_palette_with_transparency_round_trip(tmp_path: Path) -> None:
    idx = RNG.integers(0, 3, (10, 12), dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.save(tmp_path / "p.png", transparency=2)
    data = read_image(tmp_path / "p.png")
    assert data.channels == 4
    np.testing.assert_array_equal(to_array(data)[..., 3], np.where(idx == 2, 0, 255))
    back = read_image(write_image(data, tmp_path / "out.png"))
    np.testing.assert_array_equal(back.pixels, data.pixels)


def test_premultiplied_tiff_is_unpremultiplied(tmp_path: Path) -> None:
    straight = np.zeros((4, 4, 4), np.uint8)
    straight[..., :3] = (200, 100, 50)
    straight[..., 3] = 128
    premul = straight.copy()
    premul[..., :3] = straight[..., :3].astype(np.uint16) * 128 // 255
    (tmp_path / "a.tif").write_bytes(tiff_bytes(premul, extra_samples=1))
    got = to_array(read_image(tmp_path / "a.tif")).astype(int)
    assert np.abs(got - straight).max() <= 2  # un-premultiplied


# --------------------------------------------------------------------------- other formats


def test_jpeg_write_chroma_and_alpha(tmp_path: Path) -> None:
    arr = smooth(32, 32, 3)
    hi = write_image(from_array(arr), tmp_path / "hi.jpg", quality=95)
    lo = write_image(from_array(arr), tmp_path / "lo.jpeg", quality=80)
    with Image.open(hi) as a, Image.open(lo) as b:
        assert JpegImagePlugin.get_sampling(a) == 0  # 4:4:4
        assert JpegImagePlugin.get_sampling(b) == 2  # 4:2:0
    assert np.abs(to_array(read_image(hi)).astype(int) - arr).max() <= 6
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, 8:, 3] = 255  # left half fully transparent
    with pytest.warns(ImageWarning, match="white"):
        p = write_image(from_array(rgba), tmp_path / "a.jpg")
    got = to_array(read_image(p)).astype(int)
    assert got.shape == (16, 16, 3)
    assert np.abs(got[:, :6] - 255).max() <= 4  # transparent -> white
    assert np.abs(got[:, 10:] - (255, 0, 0)).max() <= 4
    g = write_image(from_array(smooth(16, 16, 1)), tmp_path / "g.jpg")
    with Image.open(g) as im:
        assert im.mode == "L"


def test_webp_bmp_tiff_writes(tmp_path: Path) -> None:
    rgba = rand(16, 20, 4)
    p = write_image(from_array(rgba), tmp_path / "l.webp", lossless=True)
    np.testing.assert_array_equal(to_array(read_image(p)), rgba)
    rgb = smooth(16, 20, 3)
    p = write_image(from_array(rgb), tmp_path / "q.webp", quality=90)
    assert np.abs(to_array(read_image(p)).astype(int) - rgb).mean() < 3
    grey = rand(16, 20, 1)
    back = read_image(write_image(from_array(grey), tmp_path / "g.webp", lossless=True))
    np.testing.assert_array_equal(to_array(back), np.repeat(grey, 3, 2))
    p = write_image(from_array(rgb), tmp_path / "x.bmp")
    np.testing.assert_array_equal(to_array(read_image(p)), rgb)
    for arr in (rgb, rgba, rand(7, 5, 2), rand(7, 5, 1, 16)):
        p = write_image(from_array(arr), tmp_path / f"x{arr.shape[2]}.tif")
        back = read_image(p)
        assert back.bit_depth == (16 if arr.dtype == np.uint16 else 8)
        np.testing.assert_array_equal(to_array(back, arr.dtype), arr)
    with pytest.warns(ImageWarning, match="8 bits"):
        p = write_image(from_array(rand(4, 4, 3, 16)), tmp_path / "c16.tiff")
    assert read_image(p).bit_depth == 8


def test_encoder_limits_are_write_errors_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    """libjpeg stops at 65500 pixels a side (not the format's 65535) and libwebp at 16383;
    past them, and for any other encoder refusal, an ImageWriteError names the file instead of
    Pillow's bare OSError("broken data stream"), and nothing is left behind."""
    edge = write_image(from_array(np.zeros((1, 65500, 3), np.uint8)), tmp_path / "edge.jpg")
    assert read_image(edge).size == (65500, 1)
    for name, width, limit in (("wide.jpg", 65501, "65500"), ("wide.webp", 16384, "16383")):
        with pytest.raises(ImageWriteError, match=f"{name}: .*at most {limit} pixels"):
            write_image(from_array(np.zeros((1, width, 3), np.uint8)), tmp_path / name)

    def refuse(self, fp, format=None, **params):
        raise OSError("broken data stream when writing image file")

    monkeypatch.setattr(Image.Image, "save", refuse)
    for name in ("x.jpg", "x.webp", "x.tif", "x.bmp"):  # PNG is our own encoder
        with pytest.raises(ImageWriteError, match=rf"{name}: the \w+ encoder refused this "
                                                  r"4x4 image: broken data stream"):
            write_image(from_array(rand(4, 4, 3)), tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["edge.jpg"]


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="extension"):
        write_image(from_array(rand(2, 2, 3)), tmp_path / "x.xyz")


# --------------------------------------------------------------------------- EXIF and ICC


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    stored = rand(6, 10, 3)
    path = tmp_path / "o.png"
    path.write_bytes(png_bytes(stored, before_idat=[(b"eXIf", _exif(orientation)[6:])]))
    data = read_image(path)
    with Image.open(path) as im:
        want = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(to_array(data), want)
    exif = Image.Exif()
    exif.load(data.exif)
    assert exif.get(0x0112) == 1 and exif.get(0x010F) == "srgan corpus"
    # written files keep the EXIF, upright
    for name in ("w.jpg", "w.png", "w.webp", "w16.png"):
        out = data.with_pixels(data.pixels, bit_depth=16) if name == "w16.png" else data
        back = read_image(write_image(out, tmp_path / name))
        assert back.size == data.size
        exif.load(back.exif)
        assert exif.get(0x0112) == 1 and exif.get(0x010F) == "srgan corpus", name


def test_from_pil_keeps_layout_unless_asked(tmp_path: Path) -> None:
    im = Image.fromarray(rand(6, 10, 3))
    im.info["exif"] = _exif(6)
    assert from_pil(im).size == (10, 6)
    assert from_pil(im, apply_orientation=True).size == (6, 10)


@pytest.mark.parametrize("name", ["a.png", "b.jpg", "c.webp", "d.tiff"])
@pytest.mark.parametrize("bits", [8, 16])
def test_icc_survives_round_trip(tmp_path: Path, name: str, bits: int) -> None:
    icc = srgb_icc()
    data = from_array(rand(8, 8, 3, bits))
    data.icc_profile = icc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageWarning)
        back = read_image(write_image(data, tmp_path / name))
    assert back.icc_profile == icc


def test_grey_icc_not_put_on_rgb(tmp_path: Path) -> None:
    data = from_array(rand(4, 4, 3))
    data.icc_profile = b"\0" * 16 + b"GRAY" + b"\0" * 200
    back = read_image(write_image(data, tmp_path / "x.png"))
    assert back.icc_profile is None


@pytest.mark.parametrize("name", ["a.png", "b.jpg", "c.webp", "d.tiff"])
@pytest.mark.parametrize("channels", [1, 3])
def test_icc_of_the_wrong_colour_space_never_reaches_the_file(
    tmp_path: Path, name: str, channels: int
) -> None:
    # checked in the file itself: our reader would drop such a profile anyway
    if name.endswith(".webp") and channels == 1:
        pytest.skip("WebP stores grey as RGB, so an RGB profile is the right one there")
    data = from_array(rand(4, 4, channels))
    data.icc_profile = srgb_icc() if channels == 1 else b"\0" * 16 + b"GRAY" + b"\0" * 200
    path = write_image(data, tmp_path / name)
    with Image.open(path) as im:
        assert not im.info.get("icc_profile")


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_streamed_png_round_trips_in_many_idat_chunks(
    tmp_path: Path, channels: int, bits: int
) -> None:
    arr = smooth(601, 357, channels, bits)
    icc = srgb_icc() if channels > 2 else None
    path = tmp_path / "x.png"
    with open(path, "wb") as f:
        png.write_png(f, arr, icc, _exif(1), block_bytes=1000, idat_bytes=1000)
    raw = path.read_bytes()
    assert raw.count(b"IDAT") > 3 and raw[24] == bits
    back = read_image(path)
    np.testing.assert_array_equal(to_array(back, arr.dtype), arr)
    assert back.bit_depth == bits and back.icc_profile == icc
    assert back.exif is not None
    if bits == 8:  # and Pillow, an independent decoder, agrees
        with Image.open(path) as im:
            np.testing.assert_array_equal(np.asarray(im).reshape(arr.shape), arr)


def test_adler32_combine_matches_zlib() -> None:
    import zlib

    rng = np.random.default_rng(0)
    for n1, n2 in [(0, 0), (0, 5), (7, 0), (1, 65521), (100_000, 70_000), (3, 200_000)]:
        a, b = rng.bytes(n1), rng.bytes(n2)
        got = png.adler32_combine(zlib.adler32(a), zlib.adler32(b), n2)
        assert got == zlib.adler32(a + b), (n1, n2)


def test_png_blocks_deflated_in_parallel_make_one_valid_stream(tmp_path: Path) -> None:
    import zlib

    arr = smooth(400, 300, 3)
    buf = io.BytesIO()
    png.write_png(buf, arr, None, None, block_bytes=5000)  # ~40 blocks over the threads
    raw = buf.getvalue()
    (tmp_path / "x.png").write_bytes(raw)
    idat, pos = b"", 8
    while pos < len(raw):
        (length,) = np.frombuffer(raw[pos : pos + 4], ">u4")
        if raw[pos + 4 : pos + 8] == b"IDAT":
            idat += raw[pos + 8 : pos + 8 + int(length)]
        pos += 12 + int(length)
    inflated = zlib.decompress(idat)  # checks the combined Adler-32 too
    assert len(inflated) == 400 * (1 + 300 * 3)
    assert set(inflated[:: 1 + 300 * 3]) <= {0, 1, 2, 3, 4}  # a filter type starts each row
    with Image.open(tmp_path / "x.png") as im:
        np.testing.assert_array_equal(np.asarray(im), arr)


def test_streamed_png_memory_does_not_grow_with_the_image(tmp_path: Path) -> None:
    # peak = blocks in flight + one IDAT chunk being gathered: both fixed; small blocks and
    # chunks here so that the smaller image already reaches that steady state (12 blocks)

    def peak_writing(rows: int) -> int:
        pixels = np.lib.format.open_memmap(tmp_path / f"{rows}.npy", mode="w+", dtype=np.uint16,
                                           shape=(rows, 500, 3))  # on disk, as huge results
        pixels[:] = smooth(500, 500, 3, 16)[np.arange(rows) % 500]
        pixels.flush()
        tracemalloc.start()
        try:
            with open(tmp_path / f"{rows}.png", "wb") as f:
                png.write_png(f, pixels, None, None, block_bytes=1 << 18, idat_bytes=1 << 16)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        back = to_array(read_image(tmp_path / f"{rows}.png"), np.uint16)
        np.testing.assert_array_equal(back, pixels)
        return peak

    small, large = peak_writing(1000), peak_writing(8000)  # 3 MB and 24 MB of pixels
    assert large < 1.25 * small + (1 << 20), (small, large)


def test_cmyk_is_converted_like_pillow(tmp_path: Path) -> None:
    im = Image.new("CMYK", (8, 8), (10, 200, 30, 40))
    im.save(tmp_path / "c.jpg", quality=100)
    data = read_image(tmp_path / "c.jpg")
    with Image.open(tmp_path / "c.jpg") as ref:
        want = np.asarray(ref.convert("RGB")).astype(int)
    assert data.channels == 3 and np.abs(to_array(data).astype(int) - want).max() == 0
    assert data.icc_profile is None and any("approximately" in w for w in data.warnings)


def test_cmyk_with_profile_is_colour_managed(tmp_path: Path) -> None:
    im = Image.new("CMYK", (8, 8), (128, 128, 128, 0))
    im.save(tmp_path / "c.jpg", quality=100, icc_profile=cmyk_icc())
    data = read_image(tmp_path / "c.jpg")
    got = to_array(data).astype(int)[4, 4]
    naive = np.asarray(im.convert("RGB"))[4, 4].astype(int)
    assert np.abs(got - naive).max() > 20  # the profile, not the formula, decided
    assert data.icc_profile is not None and icc_space(data.icc_profile) == "RGB"
    back = read_image(write_image(data, tmp_path / "c.png"))
    assert back.icc_profile == data.icc_profile


# --------------------------------------------------------------------------- limits and errors


def test_bomb_refused_fast_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(rand(4, 4, 3), ihdr_size=(100000, 100000)))
    tracemalloc.start()
    with pytest.raises(ImageReadError, match="100000x100000") as err:
        read_image(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000  # refused from the header: nothing of 30 GB was allocated
    assert str(path) in str(err.value)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard restored after the read


def test_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(from_array(rand(10, 10, 3)), tmp_path / "x.png")
    with pytest.raises(ImageReadError, match="limit of 99"):
        read_image(path, max_pixels=99)
    assert read_image(path, max_pixels=100).size == (10, 10)
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "50")
    assert resolve_max_pixels() == 50
    with pytest.raises(ImageReadError, match="SRGAN_MAX_PIXELS"):
        read_image(path)
    assert read_image(path, max_pixels=0).size == (10, 10)  # 0: no limit
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "0")
    assert resolve_max_pixels() is None
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="SRGAN_MAX_PIXELS"):
        resolve_max_pixels()


def test_pillow_globals_forced_during_read_and_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    buf = io.BytesIO()
    Image.fromarray(rand(64, 64, 3)).save(buf, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "t.jpg")
    (tmp_path / "ok.jpg").write_bytes(buf.getvalue())
    assert read_image(tmp_path / "ok.jpg").size == (64, 64)  # our limit, not Pillow's 10
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True and Image.MAX_IMAGE_PIXELS == 10


def test_errors_are_image_read_errors(tmp_path: Path) -> None:
    assert issubclass(ImageReadError, ValueError)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.png")
        with pytest.raises(ImageReadError, match="regular file"):
            read_image(tmp_path / "fifo.png")  # must not block
    err = ImageReadError(tmp_path / "x.png", "broken")
    assert err.path == tmp_path / "x.png" and err.reason == "broken"
    assert str(err) == f"{tmp_path / 'x.png'}: broken"


def test_decoder_exceptions_become_read_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(from_array(rand(4, 4, 3)), tmp_path / "x.png")

    def boom(*args, **kwargs):
        raise IndexError("decoder bug")

    monkeypatch.setattr(imageio.pil, "pil_to_uint", boom)
    with pytest.raises(ImageReadError, match="decoder bug"):
        read_image(path)


# --------------------------------------------------------------------------- writing


def test_overwrite_refused_unless_asked(tmp_path: Path) -> None:
    first = from_array(rand(4, 4, 3))
    path = write_image(first, tmp_path / "x.png")
    before = path.read_bytes()
    with pytest.raises(ImageWriteError, match="already exists"):
        write_image(from_array(rand(4, 4, 3)), path)
    assert path.read_bytes() == before
    write_image(from_array(rand(5, 5, 3)), path, overwrite=True)
    assert read_image(path).size == (5, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_encoder_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(from_array(rand(4, 4, 3)), tmp_path / "x.png")
    before = path.read_bytes()

    def crash_midway(out, *args, **kwargs):
        out.write(b"\x89PNG\r\n\x1a\n")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(write, "write_png", crash_midway)
    with pytest.raises(RuntimeError):
        write_image(from_array(rand(4, 4, 3)), path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp", ".tif"])
def test_disk_full_leaves_no_temp_and_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    path = write_image(from_array(rand(4, 4, 3)), tmp_path / f"x{ext}")
    before = path.read_bytes()
    fill_disk(monkeypatch, lambda target, n: True)  # half of the first write, then full
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(from_array(rand(8, 8, 3)), path, overwrite=True)
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(from_array(rand(8, 8, 3)), tmp_path / f"new{ext}")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"x{ext}"]


def test_output_folder_problems(tmp_path: Path) -> None:
    data = from_array(rand(4, 4, 3))
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(data, tmp_path / "nope" / "x.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageWriteError, match="folder"):
        write_image(data, tmp_path / "d.png", overwrite=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        try:
            (ro / "probe").touch()
        except PermissionError:  # not root: the folder really is read-only
            with pytest.raises(ImageWriteError, match="permission"):
                write_image(data, ro / "x.png")
            assert list(ro.iterdir()) == []
        else:
            pytest.skip("this process can write into read-only folders (root)")
    finally:
        ro.chmod(0o700)


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    path = write_image(from_array(rand(4, 4, 3)), tmp_path / "x.png")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# --------------------------------------------------------------------------- arrays and PIL


def test_quantize_rounds_half_up_and_clips() -> None:
    k = np.arange(255, dtype=np.float64)
    up = from_array(((k + 0.5) / 255).astype(np.float32).reshape(1, -1))
    np.testing.assert_array_equal(to_array(up)[0, :, 0], k + 1)
    down = from_array(((k + 0.49) / 255).astype(np.float32).reshape(1, -1))
    np.testing.assert_array_equal(to_array(down)[0, :, 0], k)
    odd = ImageData(np.array([[[-0.2], [1.7], [np.nan], [0.5]]], np.float32))
    np.testing.assert_array_equal(to_array(odd)[0, :, 0], [0, 255, 0, 128])
    np.testing.assert_array_equal(to_array(odd, np.uint16)[0, :, 0], [0, 65535, 0, 32768])


def test_from_array_kinds() -> None:
    assert from_array(rand(3, 4, 3)).bit_depth == 8
    assert from_array(rand(3, 4, 1, 16)[:, :, 0]).channels == 1
    assert from_array(np.zeros((3, 4), bool)).bit_depth == 8
    assert from_array(np.zeros((3, 4, 3), np.float64), bit_depth=16).bit_depth == 16
    with pytest.raises(ValueError):
        from_array(np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(ValueError):
        from_array(np.full((3, 4), 2.0))
    with pytest.raises(ValueError):
        from_array(np.zeros((3, 4), np.int32))
    a = rand(5, 6, 3, 16)
    np.testing.assert_array_equal(to_array(from_array(a), np.uint16), a)
    b = rand(5, 6, 4)
    np.testing.assert_array_equal(to_array(from_array(b), np.uint16) // 257, b)
    np.testing.assert_array_equal(to_array(from_array(b), np.float32), b / np.float32(255))


def test_image_data_helpers() -> None:
    d = from_array(rand(5, 6, 4))
    assert (d.height, d.width, d.size, d.mode) == (5, 6, (6, 5), "RGBA")
    assert d.has_alpha and not d.is_grey
    assert d.color.shape == (5, 6, 3) and d.alpha.shape == (5, 6, 1)
    g = from_array(rand(5, 6, 1))
    assert g.is_grey and not g.has_alpha and g.alpha is None and g.color.shape == (5, 6, 1)
    d.icc_profile = b"icc"
    e = d.with_pixels(np.zeros((10, 12, 4), np.float32))
    assert e.size == (12, 10) and e.icc_profile == b"icc" and e.bit_depth == 8


def test_pil_conversions() -> None:
    for mode, ch in (("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4), ("1", 1), ("P", 3),
                     ("CMYK", 3), ("YCbCr", 3), ("RGBX", 3), ("I;16", 1), ("I", 1)):
        data = from_pil(Image.new(mode, (3, 2)))
        assert data.channels == ch and data.size == (3, 2), mode
    a16 = rand(4, 5, 1, 16)
    im = to_pil(from_array(a16))
    assert im.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(im), a16[:, :, 0])
    np.testing.assert_array_equal(to_array(from_pil(im), np.uint16), a16)
    im = to_pil(from_array(rand(4, 5, 3, 16)))
    assert im.mode == "RGB"  # Pillow has no 16-bit colour mode
    data = from_array(rand(4, 5, 2))
    data.icc_profile = b"x"
    assert to_pil(data).mode == "LA" and to_pil(data).info["icc_profile"] == b"x"
    with pytest.raises(ValueError, match="outside"):
        from_pil(Image.new("F", (2, 2), 3.0))
    with pytest.raises(ValueError, match="0..65535"):
        from_pil(Image.new("I", (2, 2), -5))


# --------------------------------------------------------------------------- finding images


def test_find_images(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    for rel in ("b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.tiff", ".hidden.png",
                ".hidden_dir/e.png", "notes.txt", "sub/f.Png"):
        (root / rel).write_bytes(b"x")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)  # a symlink loop
    (root / "self").symlink_to(".", target_is_directory=True)
    odd = Path(os.fsdecode(os.fsencode(str(root)) + b"/\xff\xfe odd.png"))
    odd.write_bytes(b"x")
    found = find_images([root])
    rel = [os.fsencode(p.relative_to(root)) for p in found]
    assert rel == sorted(rel, key=lambda b: os.fsdecode(b))
    assert set(rel) == {b"a.JPG", b"b.png", b"\xff\xfe odd.png", b"sub/c.webp",
                        b"sub/deeper/d.tiff", b"sub/f.Png"}
    flat = find_images([root], recursive=False)
    assert {p.name for p in flat} == {"a.JPG", "b.png", os.fsdecode(b"\xff\xfe odd.png")}
    # explicit files pass through (even missing or non-image); duplicates dropped
    explicit = find_images([root / "notes.txt", root / "b.png", root, tmp_path / "gone.png"])
    assert explicit[0] == root / "notes.txt" and explicit[1] == root / "b.png"
    assert explicit.count(root / "b.png") == 1 and explicit[-1] == tmp_path / "gone.png"
    shown = display_path(odd)
    shown.encode("utf-8")  # printable
    assert "\\xff\\xfe odd.png" in shown
    # any text quoting such a path (an exception's message) escapes the same way
    assert display_text("cannot read " + os.fsdecode(b"/x/\xe9")) == "cannot read /x/\\xe9"
    assert display_text("half \ud800 a pair") == "half \\ud800 a pair"
    with pytest.raises(ImageReadError) as err:
        read_image(odd)  # content is junk; the message must still be printable
    str(err.value).encode("utf-8")
    good = write_image(from_array(rand(3, 3, 3)), os.fsencode(root) + b"/\xe9.png")
    assert read_image(os.fsencode(good)).size == (3, 3)  # bytes paths work too


def test_find_images_passes_an_overlong_name_through_to_a_clear_read_error(tmp_path):
    # issue 18 item 11: a name over 255 bytes raised OSError out of find_images
    from srgan.imageio import ImageReadError, find_images, read_image

    long = tmp_path / ("n" * 300 + ".png")
    assert find_images([long]) == [long]
    with pytest.raises(ImageReadError, match="too long"):
        read_image(long)
