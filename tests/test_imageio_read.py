"""srgan.imageio.read without files: bytes and file objects in, `probe_size`, `read_rgb8`."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_corpus import png_bytes, srgb_icc
from PIL import ImageFile

from srgan.imageio import (
    ImageReadError,
    ImageWarning,
    ImageWriteError,
    QuantizedImage,
    TooManyPixels,
    encode,
    probe_size,
    read_bytes,
    read_image,
    read_quantized,
    read_rgb8,
)

RNG = np.random.default_rng(5)


def rgba16(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 65536, (h, w, 4), dtype=np.uint16)


class Pipe(io.RawIOBase):
    """A stream that cannot seek, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("bits", [8, 16])
def test_bytes_and_file_objects_read_like_the_file(tmp_path, bits):
    arr = rgba16(9, 7) if bits == 16 else RNG.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    data = png_bytes(arr, bit_depth=bits)
    (tmp_path / "x.png").write_bytes(data)
    want = read_quantized(tmp_path / "x.png")
    for got in (read_quantized(io.BytesIO(data)), read_bytes(data, quantized=True),
                read_quantized(Pipe(data))):
        assert isinstance(got, QuantizedImage) and got.bit_depth == bits
        np.testing.assert_array_equal(got.pixels, want.pixels)
        assert got.path is None  # not a file
    floats = read_image(io.BytesIO(data))
    np.testing.assert_array_equal(floats.pixels, want.to_image_data().pixels)


def test_file_object_is_read_from_its_start():
    data = png_bytes(RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    f = io.BytesIO(data)
    f.seek(10)
    assert read_image(f).size == (5, 4)


def test_errors_from_memory_name_the_upload():
    with pytest.raises(ImageReadError) as err:
        read_bytes(b"", name="up.png")
    assert str(err.value) == "up.png: empty file (0 bytes)"
    with pytest.raises(ImageReadError, match=r"^<memory>: not an image file"):
        read_image(io.BytesIO(b"plain text"))
    data = png_bytes(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    with pytest.raises(ImageReadError, match="truncated"):
        read_bytes(data[: len(data) // 2], name="cut.png")


def test_probe_size_reads_the_header_only_and_applies_the_limit():
    huge = png_bytes(np.zeros((1, 1, 3), np.uint8), ihdr_size=(100_000, 100_000))
    with pytest.MonkeyPatch.context() as m, pytest.raises(TooManyPixels) as err:
        m.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
        probe_size(io.BytesIO(huge), 50_000, name="bomb.png")
    e = err.value
    assert (e.width, e.height, e.limit) == (100_000, 100_000, 50_000)
    assert str(e).startswith("bomb.png: image is 100000x100000 = 10,000,000,000 pixels")
    assert probe_size(io.BytesIO(huge), 0) == (100_000, 100_000)  # 0: no limit
    f = io.BytesIO(png_bytes(np.zeros((3, 8, 3), np.uint8)))
    assert probe_size(f) == (8, 3) and f.tell() == 0  # rewound for the reader after it
    with pytest.raises(ImageReadError, match="empty"):
        probe_size(io.BytesIO(b""))
    with pytest.raises(ImageReadError, match="not an image"):
        probe_size(io.BytesIO(b"GIF89a? no"))


def test_read_applies_the_same_limit_as_probe():
    data = png_bytes(np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(TooManyPixels):
        read_bytes(data, 899)
    assert read_bytes(data, 900).size == (30, 30)


@pytest.mark.parametrize(("channels", "bits", "notes"), [
    (1, 8, ["grey scored as RGB"]),
    (2, 8, ["alpha ignored", "grey scored as RGB"]),
    (3, 8, []),
    (4, 16, ["alpha ignored", "16-bit rounded to 8"]),
])
def test_read_rgb8_gives_writable_rgb_uint8(channels, bits, notes):
    top = 255 if bits == 8 else 65535
    dtype = np.uint8 if bits == 8 else np.uint16
    arr = RNG.integers(0, top + 1, (5, 6, channels), dtype=dtype)
    pixels, got_notes = read_rgb8(io.BytesIO(png_bytes(arr, bit_depth=bits)))
    assert pixels.dtype == np.uint8 and pixels.shape == (5, 6, 3) and pixels.flags.writeable
    assert got_notes == notes
    colour = arr[:, :, :3] if channels >= 3 else np.repeat(arr[:, :, :1], 3, axis=2)
    want = np.floor(colour.astype(np.float64) * 255 / top + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(pixels, want)


@pytest.mark.parametrize("fmt", ["png", "webp", "tif"])
def test_encode_round_trips_through_read_bytes(fmt):
    arr = RNG.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    image = QuantizedImage(arr, 8, icc_profile=srgb_icc())
    notes: list[str] = []
    data = encode(image, fmt, lossless=True, notes=notes)
    back = read_bytes(data, quantized=True)
    np.testing.assert_array_equal(back.pixels, arr)
    assert back.icc_profile == image.icc_profile and notes == []


def test_encode_returns_what_was_lost_as_notes():
    arr = rgba16(6, 6)
    arr[0, 0, 3] = 0  # one transparent pixel
    notes: list[str] = []
    data = encode(QuantizedImage(arr, 16), ".JPG", notes=notes)
    assert read_bytes(data).source_format == "JPEG"
    assert notes == ["JPEG is written with 8 bits per channel here; 16-bit precision lost",
                     "JPEG has no alpha channel; transparency composited over white"]
    with pytest.warns(ImageWarning) as caught:  # no list: ImageWarnings instead
        encode(QuantizedImage(arr, 16), "jpeg")
    assert [str(w.message) for w in caught] == [f"<memory>: {n}" for n in notes]


def test_encode_refuses_unknown_formats_and_oversized_webp():
    image = QuantizedImage(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ImageWriteError, match="unknown output extension '.gif'"):
        encode(image, "gif")
    wide = QuantizedImage(np.zeros((1, 16384, 3), np.uint8))
    with pytest.raises(ImageWriteError, match="16383"):
        encode(wide, "webp")
