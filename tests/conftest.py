"""Shared fixtures: tiny random generators and small generated images (no ../shared needed).
Plain helpers are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHARED, make_images, tiny_generator
from image_corpus import make_corpus

from srgan.weights import ModelCard, save_generator

# one thread: tests use tiny networks, and subprocess tests run several processes at once
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random x4 generator saved as an srgan model file."""
    path = tmp_path_factory.mktemp("models") / "tiny_x4.safetensors"
    return save_generator(tiny_generator(), path, ModelCard(name="tiny_x4", description="test"))


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val): four 40x48 and two 32x36 smooth PNGs for tiny training runs."""
    root = tmp_path_factory.mktemp("images")
    return make_images(root / "train", 4), make_images(root / "val", 2, (32, 36), seed=100)


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy 2-core machine OpenMP's spinning
    threads make each step ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    """The MATLAB reference vectors (../shared/testvectors/sr_reference.npz): images, bicubic
    resizes and metric values that metrics and resize must reproduce."""
    vectors = SHARED / "testvectors" / "sr_reference.npz"
    if not vectors.is_file():
        pytest.skip(f"reference vectors not found at {vectors}")
    with np.load(vectors) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(folder, cases): the bad/odd image corpus of tests/image_corpus.py, each case with
    what it should give (an output, or an error naming the file)."""
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)
