"""srgan.quantize: one rounding (MATLAB's im2uint8) for NumPy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srgan.quantize import quantize, quantize_tensor, to_float

EDGES = [-0.5, 0.0, 0.5 / 255, 0.499 / 255, 1.5 / 255, 0.5, 1.0 - 1e-9, 1.0, 7.0,
         float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bits", [8, 16])
def test_numpy_and_torch_round_alike(bits):
    x = np.array(EDGES, np.float32)
    ours = quantize(x, bits)
    assert ours.dtype == (np.uint8 if bits == 8 else np.uint16)
    assert np.array_equal(quantize_tensor(torch.from_numpy(x), bits).numpy(), ours)
    top = 255 if bits == 8 else 65535
    assert ours[[0, 1, 7, 8, 9, 10, 11]].tolist() == [0, 0, top, top, 0, top, 0]


def test_half_rounds_up_and_integers_survive_the_round_trip():
    assert quantize(np.array([0.5 / 255, 1.5 / 255], np.float32), 8).tolist() == [1, 2]
    ints = np.arange(256, dtype=np.uint8)
    assert np.array_equal(quantize(to_float(ints, 8), 8), ints)
    ints16 = np.arange(0, 65536, 7, dtype=np.uint16)
    assert np.array_equal(quantize(to_float(ints16, 16), 16), ints16)


def test_torch_keeps_the_shape_and_dtype():
    y = torch.rand(2, 3, 4, 5)
    assert quantize_tensor(y).shape == y.shape and quantize_tensor(y).dtype == torch.uint8
    assert quantize_tensor(y, 16).dtype == torch.int32
    with pytest.raises(ValueError, match="8 or 16"):
        quantize_tensor(y, 12)
