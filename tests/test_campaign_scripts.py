"""scripts/campaign_ship.py and scripts/training_curve.py on a run folder made here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _fake_run(folder: Path, stage: str = "srresnet", batch: int = 16) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(f'[train]\nstage = "{stage}"\nbatch_size = {batch}\n')
    rows = [{"time": 1000.0, "event": "start", "step": 0}]
    for step, psnr in ((500, 29.0), (1000, 29.5), (1500, 29.4)):
        rows.append({"time": 1000.0 + step * 0.6, "step": step, "train/loss": 0.01})
        rows.append({"time": 1000.0 + step * 0.6, "step": step, "val/psnr_y": psnr})
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_segment_totals_count_up_to_the_best_step(tmp_path):
    ship = _load("campaign_ship")
    run = _fake_run(tmp_path / "run")
    patches, hours = ship.segment_totals(run / "log.jsonl", batch=16, best_step=1000)
    assert patches == 16_000
    assert hours == pytest.approx(600 / 3600)


def test_segment_totals_skip_the_time_between_sessions_and_what_shipped_before(tmp_path):
    ship = _load("campaign_ship")
    rows = [{"time": 0.0, "event": "start", "step": 0},
            {"time": 100.0, "step": 100}, {"time": 200.0, "step": 200},
            {"time": 210.0, "event": "stopped", "step": 200},
            {"time": 5000.0, "event": "resume", "step": 200},  # the next session
            {"time": 5100.0, "step": 300}, {"time": 5200.0, "step": 400}]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    patches, hours = ship.segment_totals(log, batch=16, best_step=400)
    assert patches == 6_400 and hours == pytest.approx(400 / 3600)
    # an earlier segment shipped step 150 from this run: count from there only
    patches, hours = ship.segment_totals(log, batch=16, best_step=300, since_step=150)
    assert patches == 2_400 and hours == pytest.approx(150 / 3600)


def test_curve_shifts_each_segment_by_the_patches_before_it(tmp_path):
    curve = _load("training_curve")
    first = _fake_run(tmp_path / "01-srresnet_x4")
    (first / "segment.json").write_text(json.dumps({"patches_before": 38_480,
                                                    "shipped_before": 28.94}))
    seg = curve.read_segment(first)
    assert seg.points == [(38_480 + 8_000, 29.0), (38_480 + 16_000, 29.5),
                          (38_480 + 24_000, 29.4)]
    assert seg.start_psnr == 28.94 and seg.stage == "srresnet"
    live = curve.read_segment(_fake_run(tmp_path / "run", "srgan", 8), patches_before=1000)
    assert live.points[0] == (1000 + 4000, 29.0) and live.start_psnr is None
    # stage 2 goes on from the stage-1 weights it started from
    gan = _fake_run(tmp_path / "02-srgan_mse_x4", "srgan", 16)
    (gan / "segment.json").write_text(json.dumps({"patches_before": 0, "init_patches": 222_480,
                                                  "shipped_before": None}))
    assert curve.read_segment(gan).points[0] == (222_480 + 8_000, 29.0)
    # a second segment from the same run folder: only its own steps, after the first's best
    again = _fake_run(tmp_path / "03-srresnet_x4")
    (again / "segment.json").write_text(json.dumps({"patches_before": 50_000,
                                                    "since_step": 1000}))
    assert curve.read_segment(again).points == [(50_000 + 8_000, 29.4)]


def test_curve_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    curve = _load("training_curve")
    seg = curve.read_segment(_fake_run(tmp_path / "01-srresnet_x4"))
    out = tmp_path / "curve.png"
    curve.draw([seg], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkerboard_script_scores_hr_near_one_and_a_patterned_model_above(tmp_path):
    """scripts/checkerboard.py on a folder made here: HR ~1, a model that adds a pattern >> 1."""
    import numpy as np
    import torch
    from helpers import pink_noise
    from PIL import Image

    from srgan.evaluate.methods import Method

    grey = np.clip(pink_noise(128), 0, 255).astype(np.uint8)
    (tmp_path / "set").mkdir()
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "set" / "a.png")

    class Checkered(Method):
        name, scale = "checkered", 4

        def __call__(self, lr: torch.Tensor) -> torch.Tensor:
            from srgan.resize import imresize

            up = imresize(lr, scale=4).to(torch.int16)
            x = torch.arange(up.shape[-1])
            sign = ((x[:, None] + x[None, :]) % 2) * 2 - 1
            return (up + 6 * sign).clamp(0, 255).to(torch.uint8)

    board = _load("checkerboard")
    board.load_methods = lambda names, device: [Checkered()]
    names, rows = board.scores_table(["checkered"], [str(tmp_path / "set")])
    assert names == ["HR", "checkered"]
    assert [label for label, _ in rows] == ["set/a", "set mean"]
    hr, checkered = rows[0][1]
    assert 0.5 < hr < 1.6 and checkered > 3 * hr
