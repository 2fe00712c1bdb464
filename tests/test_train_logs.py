"""srgan.train.logs: the metric window behind each log line, and what log.jsonl records
(srgan.jsonable: NaN, infinities, tensors and paths as valid JSON)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from srgan.jsonable import json_default, jsonable
from srgan.train.logs import MetricWindow, RunLogger


def test_metric_window_means_skips_rate_and_reopens():
    w = MetricWindow(step=10, patches_per_step=8, now=100.0)
    w.add(["loss", "adv"], [1.0, 0.5])
    w.skip()
    w.add(["loss", "adv"], [3.0, 1.5])
    assert w.rate(12, now=102.0) == pytest.approx(8.0)  # 2 steps x 8 patches in 2 s
    assert w.smooth_loss == pytest.approx(0.95 * 1.0 + 0.05 * 3.0)
    scalars, seconds = w.close(step=13, lr=1e-4, now=104.0)
    assert scalars == {"loss": 2.0, "adv": 1.0, "lr": 1e-4,
                       "patches_per_s": pytest.approx(3 * 8 / 4.0), "skipped": 1}
    assert seconds == 4.0
    # a new window: empty, from step 13 and t = 104; the smoothed loss carries on
    scalars, seconds = w.close(step=14, lr=1e-4, now=105.0)
    assert scalars == {"lr": 1e-4, "patches_per_s": 8.0, "skipped": 0} and seconds == 1.0
    assert w.smooth_loss == pytest.approx(1.1)


def test_a_window_of_only_skipped_steps_has_no_loss_and_no_smoothing():
    w = MetricWindow(step=0, patches_per_step=4, now=0.0)
    w.skip()
    scalars, _ = w.close(step=1, lr=0.1, now=1.0)
    assert "loss" not in scalars and scalars["skipped"] == 1 and w.smooth_loss is None


def test_jsonable_values():
    assert jsonable(float("nan")) == "nan" and jsonable(-math.inf) == "-inf"
    assert jsonable(torch.tensor(2.5)) == 2.5 and jsonable(torch.tensor([1, 2])) == [1, 2]
    assert jsonable(torch.tensor(float("inf"))) == "inf"
    assert jsonable(Path("a/b")) == "a/b" and jsonable(3) == 3 and jsonable("x") == "x"
    assert json.loads(json.dumps({"p": Path("q")}, default=json_default)) == {"p": "q"}
    with pytest.raises(TypeError, match="set"):
        json.dumps({1, 2}, default=json_default)


def test_log_jsonl_is_valid_json_with_nan_and_tensors(tmp_path):
    logger = RunLogger(tmp_path, progress=False, tensorboard=False)
    logger.scalars(3, {"loss": float("nan"), "grad": torch.tensor(0.25)})
    logger.event("stopped", step=3, checkpoint=None)
    logger.close()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    first, second = (json.loads(line, parse_constant=pytest.fail) for line in lines)
    assert first["train/loss"] == "nan" and first["train/grad"] == 0.25 and first["step"] == 3
    assert second["event"] == "stopped" and second["checkpoint"] is None
