"""Real low-resolution images in `srgan benchmark`: a set folder of HR/ + LR/ (DRealSR) is
scored on its own LR, and --lr-input scores NIQE on LR images that have no HR (RealSRSet)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli, pink_noise
from PIL import Image

from srgan import metrics
from srgan.evaluate import run_benchmark
from srgan.evaluate.methods import Bicubic, load_rgb8
from srgan.evaluate.noref import run_noref
from srgan.niqe import niqe

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def _save(arr, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    Image.fromarray(np.stack([grey, np.roll(grey, 3, 0), np.roll(grey, 5, 1)], -1)).save(path)
    return path


@pytest.fixture(scope="module")
def real_pairs(tmp_path_factory) -> Path:
    """Two 'camera' pairs whose LR is NOT the bicubic of the HR (another pattern)."""
    root = tmp_path_factory.mktemp("pairs") / "Cam"
    for i in range(2):
        hr = pink_noise(64, seed=i)
        _save(hr, root / "HR" / f"shot{i}.png")
        _save(pink_noise(16, seed=10 + i), root / "LR" / f"shot{i}.png")
    return root


def test_a_folder_of_hr_and_lr_is_scored_on_its_own_lr(real_pairs):
    result = run_benchmark([], [real_pairs], lpips=False)
    assert result.datasets == ["Cam"] and result.settings["lr"] == "given"
    rows = {r.image: r for r in result.rows("Cam", "bicubic")}
    assert set(rows) == {"shot0.png", "shot1.png"}
    hr = load_rgb8(real_pairs / "HR" / "shot0.png")[0]
    lr = load_rgb8(real_pairs / "LR" / "shot0.png")[0]
    expected = float(metrics.psnr_y(Bicubic(scale=4)(lr), hr, crop_border=4))
    assert rows["shot0.png"].psnr_y == pytest.approx(expected, abs=1e-9)
    made = run_benchmark([], [real_pairs / "HR"], lpips=False)  # the HR folder alone: bicubic LR
    assert made.rows("HR", "bicubic")[0].psnr_y != pytest.approx(rows["shot0.png"].psnr_y)


def test_lr_input_scores_niqe_of_each_upscaled_lr(tmp_path):
    folder = tmp_path / "RealLR"
    _save(pink_noise(40, seed=3), folder / "a.png")
    _save(pink_noise(8, seed=4), folder / "tiny.png")  # 32x32 out: too small for NIQE
    (folder / "broken.png").write_bytes(b"not a png")
    result = run_noref([], [folder])
    by_image = {s.image: s for s in result.scores}
    up = Bicubic(scale=4)(load_rgb8(folder / "a.png")[0])
    assert by_image["a.png"].niqe == pytest.approx(niqe(up, crop_border=4), abs=1e-9)
    assert by_image["a.png"].width == 160 and by_image["tiny.png"].niqe is None
    assert [Path(p).name for p, _ in result.skipped] == ["broken.png"]
    assert "| RealLR (2) | " in result.to_markdown()


def test_cli_lr_input_writes_a_niqe_table(tmp_path):
    folder = tmp_path / "Phone"
    _save(pink_noise(40, seed=5), folder / "wall.png")
    out = tmp_path / "res"
    r = cli("benchmark", "-m", "bicubic", "--data", folder, "--lr-input", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    assert "NIQE of the x4 outputs of real LR images" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["datasets"]["Phone"]["models"]["bicubic"]["niqe"] > 0
    r = cli("benchmark", "--data", folder, "--lr-input", "--lr-dir", folder, "-o", out / "2")
    assert r.exit_code == 2 and "give no --lr-dir" in r.output


@pytest.mark.skipif(not (SHARED_REAL / "DRealSR" / "HR").is_dir(), reason="no ../shared")
def test_drealsr_is_found_by_name_and_scored_on_its_real_lr():
    result = run_benchmark([], ["DRealSR"], lpips=False)
    assert result.datasets == ["DRealSR"] and result.settings["lr"] == "given"
    assert len(result.rows("DRealSR", "bicubic")) == 93
    assert 29.5 < result.mean("DRealSR", "bicubic")["psnr_y"] < 31.5
    assert torch.is_tensor(load_rgb8(SHARED_REAL / "DRealSR" / "LR" / "Canon_10_x1.png")[0])
