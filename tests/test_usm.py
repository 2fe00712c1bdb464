"""Unsharp-masked pixel targets (Real-ESRGAN's USM): the filter against an independent NumPy
reference, and the training option that applies it to the pixel terms only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config

from srgan.device import TorchrunEnv
from srgan.losses import ContentLoss, unsharp_mask
from srgan.train.loop import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(img: np.ndarray, weight=0.5, threshold=10 / 255, size=51) -> np.ndarray:
    """OpenCV's recipe in NumPy: Gaussian (sigma from its ksize rule), reflect-101 borders."""
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    ax = np.arange(size) - size // 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    k = np.outer(g, g) / np.outer(g, g).sum()
    pad = size // 2

    def blur(x):
        p = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        out = np.zeros_like(x)
        for i in range(size):
            for j in range(size):
                out += k[i, j] * p[:, i:i + x.shape[1], j:j + x.shape[2]]
        return out

    residual = img - blur(img)
    soft = blur((np.abs(residual) > threshold).astype(np.float64))
    sharp = np.clip(img + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * img


def test_unsharp_mask_matches_the_reference_and_leaves_flat_regions_alone():
    rng = np.random.default_rng(0)
    img = np.clip(0.5 + 0.3 * np.sign(np.linspace(-1, 1, 60))[None, None] +
                  0.02 * rng.standard_normal((3, 56, 60)), 0, 1)
    out = unsharp_mask(torch.from_numpy(img)[None])[0].numpy()
    np.testing.assert_allclose(out, _reference(img), atol=1e-9)
    assert np.abs(out - img)[:, :, 28:32].max() > 0.05  # the edge got sharper
    flat = torch.full((1, 3, 40, 40), 0.3)
    assert torch.equal(unsharp_mask(flat), flat)


def test_pixel_terms_use_the_pixel_target_and_the_option_changes_the_loss(image_dirs, tmp_path):
    loss = ContentLoss({"l1": 1.0})
    sr, hr = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8) * 0.5
    assert loss(sr, hr)[1]["l1"].item() == pytest.approx(0.5)
    assert loss(sr, hr, hr * 0)[1]["l1"].item() == 0.0
    values = []
    for usm in ("false", "true"):
        cfg = tiny_config(image_dirs, "train.steps=1", f"loss.usm_pixel_targets={usm}")
        trainer = Trainer(cfg, tmp_path / usm, TorchrunEnv(), torch.device("cpu"))
        trainer.load_data()
        out = trainer.train_step()
        values.append(dict(zip(out.names, out.values, strict=True))["loss"])
    assert values[0] != values[1]
