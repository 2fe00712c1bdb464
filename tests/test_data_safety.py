"""Issue 18: no command destroys a file the user owns, odd inputs get right answers or clear
errors. One test per case, and the same class of mistake checked in every command that
writes (upscale, compare, export, serve)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import smooth_image, tiny_generator
from PIL import Image

from srgan.cli import main

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, size=(12, 10), mode="RGB") -> Path:
    arr = (smooth_image(size[1], size[0], 4) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[..., :len(mode)] if mode != "L" else arr[..., 0], mode).save(path)
    return path


def cli(*args):
    return CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)


# --------------------------------------------------------------------------- upscale
def test_upscale_never_replaces_its_input_even_with_overwrite(tmp_path, tiny_model_path):
    # item 2: `-o io --suffix ""` named the output like the input
    src = write(tmp_path / "io" / "p.png")
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = cli("upscale", src, "-o", tmp_path / "io", "--suffix", "", "-m", tiny_model_path,
                  "-q", *extra)
        assert res.exit_code == 1, res.output
        assert "is one of the inputs" in res.output and "use --overwrite" not in res.output
        assert src.read_bytes() == before


def test_upscale_outputs_in_the_input_folder_are_not_upscaled_again(tmp_path, tiny_model_path):
    # item 4: rerunning into a folder inside (or equal to) the input folder grew x16, x64
    folder = tmp_path / "photos"
    write(folder / "a.png")
    for out in (folder / "up", folder):
        for _ in range(2):
            res = cli("upscale", folder, "-o", out, "-m", tiny_model_path, "-q")
            assert res.exit_code == 0, res.output
        names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
        assert not [n for n in names if "_x4_x4" in n], names
    assert sorted(p.name for p in folder.rglob("*.png")) == ["a.png", "a_x4.png", "a_x4.png"]
    assert Image.open(folder / "up" / "a_x4.png").size == (48, 40)
    # an earlier run's other scale is ours too: no a_x4_x2 / a_x2_x4
    for _ in range(2):
        res = cli("upscale", folder, "-o", folder, "-m", tiny_model_path, "-q", "--outscale", 2)
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in folder.glob("*.png")) == ["a.png", "a_x2.png", "a_x4.png"]


@pytest.mark.parametrize("suffix", ["/../..", "/x", "a/b"])
def test_upscale_suffix_cannot_leave_the_output_folder(tmp_path, tiny_model_path, suffix):
    # item 5
    src = write(tmp_path / "in" / "a.png")
    res = cli("upscale", src, "-o", tmp_path / "deep" / "out", "-m", tiny_model_path, "-q",
              "--suffix", suffix)
    assert res.exit_code == 2 and "--suffix" in res.output
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["a.png"]


def test_upscale_cpu_only_torch_and_cuda_is_a_clear_error(tmp_path, tiny_model_path,
                                                          monkeypatch):
    # item 10: an AssertionError traceback from torch before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(main, ["upscale", str(write(tmp_path / "a.png")), "-o",
                                    str(tmp_path / "o"), "-m", str(tiny_model_path),
                                    "--device", "cuda"])
    assert res.exit_code == 1 and not isinstance(res.exception, AssertionError)
    assert "--device cuda" in res.output and "--device cpu" in res.output


def test_upscale_an_overlong_name_does_not_stop_the_valid_files(tmp_path, tiny_model_path):
    # item 11: a traceback in collect_inputs, and nothing processed
    good = write(tmp_path / "good.png")
    res = cli("upscale", tmp_path / ("n" * 300 + ".png"), good, "-o", tmp_path / "o",
              "-m", tiny_model_path, "-q")
    assert res.exit_code == 1
    assert "name too long" in res.output.lower() and "1 upscaled" in res.output
    assert (tmp_path / "o" / "good_x4.png").is_file()


def test_upscale_output_names_of_255_bytes_work(tmp_path, tiny_model_path):
    # item 12: the temporary name was 14 bytes longer than the output name
    stem = "s" * (255 - len("_x4.png"))
    src = write(tmp_path / f"{stem}.png")
    res = cli("upscale", src, "-o", tmp_path / "o", "-m", tiny_model_path, "-q")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "o" / f"{stem}_x4.png").size == (48, 40)


def test_upscale_negative_tile_pad_is_refused_up_front(tmp_path, tiny_model_path):
    # item 13: accepted, then every file failed with a NumPy broadcast error
    res = cli("upscale", write(tmp_path / "a.png"), "-o", tmp_path / "o", "-m",
              tiny_model_path, "--tile-pad", "-3")
    assert res.exit_code == 2 and "--tile-pad" in res.output
    assert not (tmp_path / "o").exists()


def test_upscale_dash_o_file_name(tmp_path, tiny_model_path):
    # friction: `-o big.png` made a folder named big.png
    src = write(tmp_path / "a.png")
    res = cli("upscale", src, "-o", tmp_path / "big.png", "-m", tiny_model_path, "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "big.png").is_file() and Image.open(tmp_path / "big.png").size == (48, 40)
    assert str(tmp_path / "big.png") in res.output  # a single-file run says where it went
    res = cli("upscale", src, write(tmp_path / "b.png"), "-o", tmp_path / "two.png",
              "-m", tiny_model_path, "-q")
    assert res.exit_code == 2 and "output folder" in res.output
    assert not (tmp_path / "two.png").exists()


def test_upscale_existing_file_as_output_folder_fails_before_computing(tmp_path,
                                                                       tiny_model_path,
                                                                       monkeypatch):
    # friction: failed with a bare [Errno 17] only after every image was computed
    from srgan.inference import Upscaler

    computed = []
    monkeypatch.setattr(Upscaler, "upscale_quantized",
                        lambda self, *a, **k: computed.append(1))
    (tmp_path / "notes").write_text("mine")
    res = cli("upscale", write(tmp_path / "a.png"), "-o", tmp_path / "notes", "-m",
              tiny_model_path, "-q")
    assert res.exit_code == 1 and "not a folder" in res.output and "Errno" not in res.output
    assert computed == [] and (tmp_path / "notes").read_text() == "mine"


def test_upscale_webp_too_large_is_refused_before_computing(tmp_path, tiny_model_path,
                                                            monkeypatch):
    from srgan.inference import Upscaler

    monkeypatch.setattr(Upscaler, "upscale_quantized", lambda *a, **k: pytest.fail("computed"))
    src = write(tmp_path / "wide.png", size=(4200, 2))  # x4: 16800 > WebP's 16383
    res = cli("upscale", src, "-o", tmp_path / "o", "--ext", "webp", "-m", tiny_model_path,
              "-q")
    assert res.exit_code == 1 and "16383" in res.output


def test_upscale_outscale_names_say_the_real_scale(tmp_path, tiny_model_path):
    src = write(tmp_path / "a.png")
    res = cli("upscale", src, "-o", tmp_path / "o", "--outscale", "2", "-m", tiny_model_path,
              "-q")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "o" / "a_x2.png").size == (24, 20)
    assert not (tmp_path / "o" / "a_x4.png").exists()


def test_upscale_empty_folder_says_so(tmp_path, tiny_model_path):
    (tmp_path / "empty").mkdir()
    res = cli("upscale", tmp_path / "empty", "-o", tmp_path / "o", "-m", tiny_model_path, "-q")
    assert res.exit_code == 1 and "no images in this folder" in res.output


def test_warnings_use_the_tools_own_form(tmp_path, tiny_model_path):
    # friction: raw `UserWarning` lines with the source code line under them
    src = write(tmp_path / "a.png", mode="RGBA")
    rgba = np.array(Image.open(src))
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(src)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "srgan", "upscale", str(src), "-o", str(tmp_path / "o"), "-m",
         str(tiny_model_path), "--ext", "jpg", "--precision", "fp16", "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "warn" in ln.lower()]
    assert any(ln.startswith(f"warning: {tmp_path / 'o' / 'a_x4.jpg'}: ") for ln in lines), lines
    assert any(ln.startswith("warning: fp16 on the CPU") for ln in lines), lines
    assert all(ln.startswith("warning: ") for ln in lines), lines
    assert "UserWarning" not in res.stderr and "warnings.warn" not in res.stderr


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    # item 18: a hidden .NAME.xxxx.tmp stayed behind
    script = (
        "import os, signal, sys, time\n"
        "from srgan.atomic import atomic_write\n"
        "def emit(fh):\n"
        "    fh.write(b'x' * 1000); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"atomic_write({str(tmp_path / 'out.bin')!r}, emit)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for sig in ("SIGTERM", "SIGHUP"):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout.readline().strip() == "writing"
        assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        proc.send_signal(getattr(__import__("signal"), sig))
        assert proc.wait(timeout=30) == -getattr(__import__("signal"), sig)
        assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- compare
def test_compare_never_replaces_its_input(tmp_path, tiny_model_path):
    # item 1: `-o photo.png` replaced the photo with the figure; `DIR -o DIR` every photo
    photo = write(tmp_path / "photo.png", size=(32, 32))
    other = write(tmp_path / "other.png", size=(32, 32))
    before = {p: p.read_bytes() for p in (photo, other)}
    for args in ([photo, "-o", photo], [tmp_path, "-o", tmp_path],
                 [photo, "-o", photo, "--overwrite"]):
        res = cli("compare", "-m", tiny_model_path, "--device", "cpu", *args)
        assert res.exit_code == 1 and "is one of the inputs" in res.output, res.output
        assert {p: p.read_bytes() for p in before} == before


def test_compare_keeps_an_existing_figure_unless_overwrite(tmp_path, tiny_model_path):
    photo = write(tmp_path / "photo.png", size=(32, 32))
    fig = tmp_path / "fig.png"
    fig.write_bytes(b"precious")
    res = cli("compare", "-m", tiny_model_path, "--device", "cpu", photo, "-o", fig)
    assert res.exit_code == 1 and "exists" in res.output and fig.read_bytes() == b"precious"
    res = cli("compare", "-m", tiny_model_path, "--device", "cpu", photo, "-o", fig,
              "--overwrite")
    assert res.exit_code == 0, res.output
    assert Image.open(fig).format == "PNG"


def test_save_png_refuses_an_existing_file(tmp_path):
    from srgan.evaluate.compare import save_png

    target = tmp_path / "x.png"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        save_png(Image.new("RGB", (2, 2)), target)
    assert target.read_bytes() == b"mine"


# --------------------------------------------------------------------------- export
@pytest.fixture
def run_folder(tmp_path):
    from srgan.train import checkpoint as ckpt
    from srgan.train.config import load_config

    cfg = load_config("srresnet_x4", ["model.num_blocks=1", "model.channels=8"])
    run = tmp_path / "run"
    for step in (2, 4):
        ckpt.save_checkpoint({"step": step, "generator": tiny_generator().state_dict(),
                              "config": cfg.to_toml(), "kind": "step"},
                             run / "checkpoints", step, keep=5)
    return run


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors", "onnx"])
def test_export_never_replaces_a_checkpoint(run_folder, fmt):
    # item 3: `-o RUN/checkpoints/<newest>.pt --format torchscript` replaced it
    newest = run_folder / "checkpoints" / "step_000000004.pt"
    before = newest.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = cli("export", run_folder, "-o", newest, "--format", fmt, *extra)
        assert res.exit_code == 1 and "checkpoint" in res.output, res.output
        assert newest.read_bytes() == before
    res = cli("export", newest, "-o", newest, "--format", fmt, "--overwrite")
    assert res.exit_code == 1 and newest.read_bytes() == before


@pytest.mark.parametrize("fmt,name", [("safetensors", "m.safetensors"),
                                      ("torchscript", "m.pt")])
def test_export_keeps_an_existing_file_unless_overwrite(run_folder, tmp_path, fmt, name):
    out = tmp_path / name
    out.write_bytes(b"precious")
    res = cli("export", run_folder, "-o", out, "--format", fmt)
    assert res.exit_code == 1 and "exists" in res.output and out.read_bytes() == b"precious"
    res = cli("export", run_folder, "-o", out, "--format", fmt, "--overwrite")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != b"precious"


def test_pickled_model_advice_works_as_written(tmp_path):
    # friction: "convert it with srgan export", which refused it too
    from srgan.weights import ModelFileError, load_generator

    net = tiny_generator()
    pth = tmp_path / "foreign.pth"
    torch.save(net, pth)  # a whole pickled module: not a state dict, not a checkpoint
    with pytest.raises(ModelFileError) as info:
        load_generator(pth)
    assert "weights_only=True" in str(info.value) and "save_generator" in str(info.value)
    res = cli("export", pth, "-o", tmp_path / "x.safetensors")
    assert res.exit_code == 1 and "not an srgan training checkpoint" in res.output
    assert "save_generator" in res.output and len(res.output) < 1500
    # the recipe, run as the message writes it (with this network's shape)
    sd = tmp_path / "sd.pth"
    torch.save(net.state_dict(), sd)
    from srgan.weights import state_dict_recipe

    line = state_dict_recipe(sd).splitlines()[1].strip()
    code = line.split('"')[1].replace("SRResNet(4, 16, 64)", "SRResNet(4, 1, 8)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    loaded = load_generator(tmp_path / "sd.safetensors")
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


# --------------------------------------------------------------------------- serve
def test_serve_help_works_without_the_web_extra():
    code = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
            "from srgan.cli import main\n"
            "main(sys.argv[1:])")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code, "serve", "--help"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--port" in res.stdout and "--max-pixels" in res.stdout
    res = subprocess.run([sys.executable, "-c", code, "serve"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 1 and "pip install 'srgan[web]'" in res.stderr


def test_serve_fallback_defaults_match_the_app():
    pytest.importorskip("fastapi")
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "import srgan.serve.command as c\n"
            "print(c.DEFAULT_MAX_PIXELS, c.DEFAULT_MAX_UPLOAD_MB, c.DEFAULT_QUEUE)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60).stdout.split()
    from srgan.serve import app

    assert out == [str(app.DEFAULT_MAX_PIXELS), str(app.DEFAULT_MAX_UPLOAD_MB),
                   str(app.DEFAULT_QUEUE)]


def test_upscale_flags_a_model_whose_output_is_all_non_finite(tmp_path):
    # item 8: such a model gave black (or white) images with exit status 0
    from srgan.weights import save_generator

    net = tiny_generator()
    with torch.no_grad():
        net.tail.weight.fill_(1e38)  # finite weights, output overflows to inf / NaN
    model = save_generator(net, tmp_path / "overflow.safetensors")
    good = write(tmp_path / "a.png")
    res = cli("upscale", good, "-o", tmp_path / "o", "-m", model, "-q")
    assert res.exit_code == 1 and "NaN or infinite" in res.output
    assert f"{good}: " in res.output and not (tmp_path / "o" / "a_x4.png").exists()
