"""One contract every upscaling backend keeps (spandrel's and timm's shared tests): what
goes in comes out as the same kind, dtype and mode, by the backend's scale or to
`outscale`; grey stays grey, opaque alpha stays opaque, 16-bit stays 16-bit; integers agree
with floats within a level; and tiling gives the whole image's result. Run over the torch
and ONNX Runtime backends and the bicubic pseudo-model, on a tiny network and small images.
"""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from helpers import smooth_image, tiny_generator
from PIL import Image

from srgan.evaluate.methods import Bicubic
from srgan.imageio import ImageData, QuantizedImage
from srgan.inference import Upscaler, output_size


def _as(img: np.ndarray, dtype) -> np.ndarray:
    top = {np.uint8: 255, np.uint16: 65535}.get(dtype)
    return img.astype(dtype) if top is None else np.round(img * top).astype(dtype)


def assert_upscaler_contract(make: Callable[[int | None], object]) -> None:
    """`make(tile)` gives the backend under test (tile None: its default)."""
    up = make(None)
    s = up.scale
    img = smooth_image(13, 17, 3)
    want = (13 * s, 17 * s)
    ref = up.upscale(img)
    assert ref.dtype == np.float32 and ref.shape == (*want, 3)
    assert ref.min() >= 0 and ref.max() <= 1
    for dtype, top in [(np.uint8, 255), (np.uint16, 65535), (np.float64, 1)]:
        out = up.upscale(_as(img, dtype))
        assert out.dtype == dtype and out.shape == (*want, 3), dtype
        assert np.abs(out / top - ref).max() <= 2 / 255, dtype  # scaled, not raw integers
    # grey in, grey out; an RGB image with equal channels gains no colour
    grey = up.upscale(_as(img[..., 0], np.uint8))
    assert grey.shape == want and grey.dtype == np.uint8
    rgb = up.upscale(np.repeat(_as(img[..., :1], np.uint8), 3, axis=2))
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
    # alpha: kept as a fourth channel, opaque stays exactly opaque
    rgba = np.concatenate([_as(img, np.uint8), np.full((13, 17, 1), 255, np.uint8)], axis=2)
    out = up.upscale(rgba)
    assert out.shape == (*want, 4) and (out[..., 3] == 255).all()
    # 16-bit integers stay 16-bit, rounded tile by tile, within a level of the float path
    deep = up.upscale(QuantizedImage(_as(img, np.uint16), 16, icc_profile=b"icc"))
    assert deep.bit_depth == 16 and deep.pixels.dtype == np.uint16 and deep.icc_profile == b"icc"
    assert np.abs(deep.pixels / 65535 - ref).max() <= 1 / 255
    eight = up.upscale(ImageData(img), bits=8)
    assert eight.pixels.dtype == np.uint8 and eight.pixels.shape == (*want, 3)
    # the other kinds: ImageData, PIL, tensors (one image or a batch), and outscale
    assert up.upscale(ImageData(img, bit_depth=16)).bit_depth == 16
    pil = up.upscale(Image.fromarray(_as(img, np.uint8), "RGB"))
    assert pil.mode == "RGB" and pil.size == (want[1], want[0])
    x = torch.from_numpy(img).permute(2, 0, 1)
    assert up.upscale(x).shape == (3, *want) and up.upscale(x[None]).shape == (1, 3, *want)
    assert up.upscale(img, outscale=1.5).shape == (*output_size(13, 17, 1.5), 3)
    with pytest.raises(TypeError):
        up.upscale(np.zeros((8, 8, 3), np.int32))
    # tiling equals the whole image
    big = smooth_image(24, 40, 3, seed=1)
    assert np.abs(make(8).upscale(big) - up.upscale(big)).max() < 1e-4


NET = tiny_generator(blocks=2, channels=8)


def _onnx(tile):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    return Upscaler(NET, device="cpu", tile=tile, backend="onnxruntime")


BACKENDS = {
    "torch": lambda tile: Upscaler(NET, device="cpu", precision="fp32", tile=tile),
    "onnxruntime": _onnx,
    "bicubic": lambda tile: Bicubic(scale=4),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_backend_keeps_the_upscaler_contract(backend):
    assert_upscaler_contract(BACKENDS[backend])
