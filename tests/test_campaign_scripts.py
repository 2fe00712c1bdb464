"""scripts/campaign_ship.py and scripts/training_curve.py on a run folder made here."""

from __future__ import annotations

import importlib.util
import json
import runpy
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
    # --score halo: halo_score of each output's Y against the HR's Y, 0 for the HR itself
    from srgan.evaluate.artefacts import halo_score
    from srgan.metrics import rgb_to_y

    edge = np.zeros((64, 64, 3), np.uint8)
    edge[:, 32:] = 180
    (tmp_path / "edge").mkdir()
    Image.fromarray(edge).save(tmp_path / "edge" / "b.png")
    rimmed = torch.from_numpy(edge).permute(2, 0, 1).contiguous()
    rimmed[:, :, 33] = 230  # a bright rim beside the edge

    class Rimmed(Method):
        name, scale = "rimmed", 4

        def __call__(self, lr: torch.Tensor) -> torch.Tensor:
            return rimmed

    board.load_methods = lambda names, device: [Rimmed()]
    _, rows = board.scores_table(["rimmed"], [str(tmp_path / "edge")], score="halo")
    hr, rim = rows[0][1]
    want = halo_score(rgb_to_y(rimmed.double()).numpy(),
                      rgb_to_y(torch.from_numpy(edge).permute(2, 0, 1).double()).numpy())
    assert hr == 0.0 and rim == pytest.approx(want) and want > 5


# ------------------------------------------------------------------------- campaign_ship


@pytest.fixture(scope="module")
def ship_runs(image_dirs, tmp_path_factory):
    """A tiny validated run (2 blocks, 8 channels, 16 px crops) and one without validation."""
    from helpers import tiny_config

    from srgan.train.run import run_training

    base = tmp_path_factory.mktemp("ship")
    sets = ("train.steps=4", "log.val_every=2", "log.ckpt_every=2", "model.num_blocks=2",
            "train.ema=0.9")
    run_training(tiny_config(image_dirs, *sets), base / "validated")
    run_training(tiny_config(image_dirs, *sets, "data.val="), base / "unvalidated")
    return base


def ship_main(capsys, *argv: str) -> tuple[int, str]:
    code = _load("campaign_ship").main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_ship_errors_are_one_line(ship_runs, image_dirs, tmp_path, capsys):
    _, val = image_dirs
    code, err = ship_main(capsys, "srresnet_x4", "--run", tmp_path / "absent")
    assert (code, err) == (2, f"campaign_ship.py: error: {tmp_path / 'absent'}: no such run "
                              "folder (give --run RUN_DIR)\n")
    code, err = ship_main(capsys, "srresnet_x4", "--run", ship_runs / "unvalidated",
                          "--data", val)
    assert code == 2 and err.startswith("campaign_ship.py: error: ") and err.count("\n") == 1
    assert "best.pt" in err or "validat" in err, err
    code, err = ship_main(capsys, "srresnet_x4", "--run", ship_runs / "validated",
                          "--data", val, "--since-step", "1000000")
    assert code == 2 and err == (
        "campaign_ship.py: error: --since-step 1000000 is beyond the step being shipped (4, "
        f"the best weights of {ship_runs / 'validated'}): nothing to count\n"), err


@pytest.mark.parametrize("option, value", [("--since-step", "-1"), ("--min-gain", "nan"),
                                           ("--init-patches", "-5")])
def test_ship_refuses_bad_numbers_as_usage_errors(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        ship_main(capsys, "srresnet_x4", option, value)
    assert exit_.value.code == 2 and option in capsys.readouterr().err


@pytest.fixture
def sandboxed_ship(tmp_path, monkeypatch):
    """campaign_ship with its weights and logs folders under tmp_path and a fixed score."""
    ship = _load("campaign_ship")
    monkeypatch.setattr(ship, "WEIGHTS", tmp_path / "weights")
    monkeypatch.setattr(ship, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(ship, "benchmark_psnr", lambda models, data: dict.fromkeys(models, 30.0))
    (tmp_path / "weights").mkdir()
    return ship


def test_ship_card_describes_the_network_that_ships(ship_runs, image_dirs, tmp_path,
                                                    sandboxed_ship):
    from srgan.weights import read_metadata

    _, val = image_dirs
    ship = sandboxed_ship
    assert ship.main(["srresnet_x4", "--run", str(ship_runs / "validated"),
                      "--data", str(val)]) == 0
    card = read_metadata(tmp_path / "weights" / "srresnet_x4.safetensors")[1]
    assert card.description.startswith("SRResNet x4 (2 blocks, 8 channels), trained for "
                                       "fidelity"), card.description
    assert "16x16 patches" in card.training and "96x96" not in card.training
    segment = json.loads((tmp_path / "logs" / "01-srresnet_x4" / "segment.json").read_text())
    assert segment["best_step"] == 4 and segment["patches"] == 16


def test_ship_blend_with_ships_the_interpolated_weights(ship_runs, image_dirs, tmp_path,
                                                        sandboxed_ship):
    import torch

    from srgan.train.export import export_generator
    from srgan.weights import load_generator, read_metadata, save_generator

    _, val = image_dirs
    ship = sandboxed_ship
    run = ship_runs / "validated"
    export_generator(run, tmp_path / "run.safetensors", ema=True, best=True)
    trained = load_generator(tmp_path / "run.safetensors").net
    base = load_generator(tmp_path / "run.safetensors").net
    with torch.no_grad():
        for p in base.parameters():
            p.add_(torch.randn_like(p))
    save_generator(base, tmp_path / "base.safetensors")
    assert ship.main(["srresnet_x4", "--run", str(run), "--data", str(val),
                      "--blend-with", str(tmp_path / "base.safetensors"),
                      "--strength", "0.25"]) == 0
    shipped = tmp_path / "weights" / "srresnet_x4.safetensors"
    got = load_generator(shipped).net.state_dict()
    for key, want in base.state_dict().items():
        if want.is_floating_point():
            want = 0.75 * want + 0.25 * trained.state_dict()[key]
            assert torch.allclose(got[key].float(), want, atol=2e-3, rtol=2e-3), key
    card = read_metadata(shipped)[1]
    assert card.extra["blend"] == f"0.75 x {tmp_path / 'base.safetensors'} + 0.25 x this run"
    assert "network interpolation" in card.training
    assert f"the strength picked on {val.name}." in card.training  # the set it is not held out of
    with pytest.raises(SystemExit):
        ship.main(["srresnet_x4", "--run", str(run), "--data", str(val),
                   "--blend-with", "srresnet_x4", "--strength", "0"])


@pytest.mark.parametrize("script, args, says", [
    ("training_curve", ["{tmp}/absent", "-o", "{tmp}/c.png"], "absent/config.toml"),
    ("checkerboard", ["-m", "no_such_model", "--data", "{tmp}"], "no_such_model"),
    ("checkerboard", ["-m", "srresnet_x4", "--tile", "6"], "--tile"),
    ("pack_training_data", ["{tmp}/absent", "{tmp}/out"], "absent"),
    ("pack_training_data", ["{tmp}", "{tmp}/out", "--max-mb", "nan"], "--max-mb"),
])
def test_every_script_ends_in_one_line_errors(script, args, says, tmp_path, monkeypatch,
                                              capsys):
    """The repository's scripts answer a missing file or a bad number like srgan does."""
    monkeypatch.setattr(sys, "argv", [script, *[a.format(tmp=tmp_path) for a in args]])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(SCRIPTS / f"{script}.py"), run_name="__main__")
    code, err = exit_.value.code, capsys.readouterr().err
    if code == 2:  # argparse's usage error
        assert says in err and "Traceback" not in err
    else:
        assert isinstance(code, str) and code.startswith(f"{script}.py: error: "), code
        assert says in code and "\n" not in code
