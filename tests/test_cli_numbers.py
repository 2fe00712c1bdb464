"""Every numeric option of every `srgan` command, walked from the click definitions, at 0,
negative, nan, infinite and huge values: a usage error (exit 2) or a run that ends in its own
one-line error or success (exit 0/1), never a traceback. The runs are tiny (a 24x20 image, a
3-frame clip, the tiny model); the web server is built but not started."""

from __future__ import annotations

import click
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import make_images, write_photo

from srgan.cli import main

VALUES = ["0", "-1", "nan", "inf", "-inf", "1e30", str(10**30)]
VIDEO_OPTIONS = {"--crf", "--start", "--duration"}


def numeric_options() -> list[tuple[str, str]]:
    """(command path, option) for every int or float option, from the click definitions."""
    found = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])
            return
        for p in cmd.params:
            if isinstance(p, click.Option) and isinstance(
                    p.type, click.types.IntParamType | click.types.FloatParamType):
                found.append((" ".join(path), max(p.opts, key=len)))

    walk(main, [])
    return found


OPTIONS = numeric_options()


def test_the_walk_finds_the_options_of_every_command():
    commands = {c for c, _ in OPTIONS}
    assert {"upscale", "serve", "train", "benchmark", "compare"} <= commands
    assert {("serve", "--max-upload-mb"), ("upscale", "--start"),
            ("upscale", "--duration")} <= set(OPTIONS)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_model_path):
    """Cheap arguments that make each command do real (tiny) work."""
    base = tmp_path_factory.mktemp("numbers")
    image = write_photo(base / "a.png", size=(24, 20))
    hr = make_images(base / "hr", count=1, size=(32, 32))
    clip = None
    try:
        import av

        clip = base / "clip.mp4"
        with av.open(str(clip), "w") as c:
            v = c.add_stream("libx264", rate=25)
            v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
            rng = np.random.default_rng(0)
            for _ in range(3):
                frame = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
                for packet in v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    c.mux(packet)
            for packet in v.encode():
                c.mux(packet)
    except ImportError:
        pass
    model = str(tiny_model_path)
    return {
        "upscale": [str(image), "-m", model, "-q", "--precision", "fp32", "--device", "cpu"],
        "video": None if clip is None else [str(clip), "-m", model, "-q", "--precision", "fp32",
                                            "--device", "cpu"],
        "benchmark": ["-m", model, "--data", str(hr), "-q", "--precision", "fp32",
                      "--device", "cpu", "--no-lpips"],
        "compare": [str(hr / "im0.png"), "-m", model, "--precision", "fp32", "--device", "cpu"],
        "serve": ["-m", model, "--device", "cpu", "--precision", "fp32"],
        "train": ["srresnet_x4", "--set", f"data.train=[{base / 'absent'}]",
                  "--set", "model.num_blocks=1", "--set", "model.channels=8"],
    }


@pytest.mark.parametrize("command, option", OPTIONS)
def test_numeric_option_never_ends_in_a_traceback(command, option, inputs, tmp_path,
                                                  monkeypatch):
    if command == "serve":
        uvicorn = pytest.importorskip("uvicorn")
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # built, never listening
    kind = "video" if command == "upscale" and option in VIDEO_OPTIONS else command
    if inputs[kind] is None:
        pytest.skip("needs PyAV for a clip")
    out = {"upscale": ["-o", "OUT"], "benchmark": ["-o", "OUT"], "compare": ["-o", "OUT"],
           "train": ["--run-dir", "OUT"]}.get(command, [])
    for value in VALUES:
        target = tmp_path / f"out{VALUES.index(value)}"
        args = [*command.split(), *inputs[kind], *[str(target) if a == "OUT" else a for a in out],
                f"{option}={value}"]
        res = CliRunner().invoke(main, args)
        shown = f"srgan {' '.join(args)}\n{res.output}"
        assert res.exception is None or isinstance(res.exception, SystemExit), (
            shown, res.exception)
        assert res.exit_code in (0, 1, 2), shown
        assert "Traceback" not in res.output, shown
        if value in ("nan", "inf", "-inf"):  # no option means anything by these
            assert res.exit_code == 2 and option in res.output, shown


# ------------------------------------------------------------------------- the Python API


@pytest.mark.parametrize("name, value", [
    ("tile", float("inf")), ("tile", float("nan")), ("tile", 7), ("tile", 2.5), ("tile", True),
    ("tile_pad", -1), ("tile_pad", float("inf")), ("batch", 0), ("batch", float("nan")),
    ("memory_budget_mb", float("inf")), ("memory_budget_mb", 0),
])
def test_upscaler_refuses_numbers_that_are_not_counts(name, value, tiny_model_path):
    from srgan import Upscaler

    with pytest.raises(ValueError, match=f"^{name} must be a whole number of at least"):
        Upscaler.from_pretrained(tiny_model_path, device="cpu", **{name: value})


def test_upscaler_takes_a_whole_float_as_its_count(tiny_model_path):
    from srgan import Upscaler

    up = Upscaler.from_pretrained(tiny_model_path, device="cpu", tile=64.0, tile_pad=4.0)
    assert (up.tile, up.tile_pad) == (64, 4) and isinstance(up.tile, int)
    assert up.upscale(np.zeros((10, 12, 3), np.uint8)).shape == (40, 48, 3)


def test_a_negative_pixel_limit_is_an_error_not_no_limit(monkeypatch, tmp_path):
    from srgan.imageio import read_image, resolve_max_pixels

    image = write_photo(tmp_path / "a.png")
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "-1")
    with pytest.raises(ValueError, match="SRGAN_MAX_PIXELS must be a whole number of pixels, "
                                         "0 for no limit, got '-1'"):
        read_image(image)
    with pytest.raises(ValueError, match="max_pixels must be"):
        resolve_max_pixels(-5)
    monkeypatch.setenv("SRGAN_MAX_PIXELS", "0")
    assert resolve_max_pixels() is None and read_image(image).size == (12, 10)
