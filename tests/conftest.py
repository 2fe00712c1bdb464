"""Shared fixtures: tiny random generators and small generated images (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.nets import SRResNet
from srgan.weights import ModelCard, save_generator

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# one thread: tests use tiny networks, and subprocess tests run several processes at once
torch.set_num_threads(1)


def tiny_generator(scale: int = 4, blocks: int = 1, channels: int = 8, seed: int = 0) -> SRResNet:
    torch.manual_seed(seed)
    return SRResNet(scale=scale, num_blocks=blocks, channels=channels).eval()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random x4 generator saved as an srgan model file."""
    path = tmp_path_factory.mktemp("models") / "tiny_x4.safetensors"
    return save_generator(tiny_generator(), path, ModelCard(name="tiny_x4", description="test"))


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A float32 HxWxC image in [0, 1] with structure at several scales (not just noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = []
    for c in range(channels):
        f1, f2 = rng.uniform(0.02, 0.2, 2)
        planes.append(0.5 + 0.25 * np.sin(f1 * xx + c) * np.cos(f2 * yy) + 0.1 * rng.random((h, w)))
    return np.clip(np.stack(planes, axis=2), 0, 1).astype(np.float32)
