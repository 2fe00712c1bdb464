"""`srgan upscale` (srgan.commands.upscale, .plan): options, output names, and that no run
destroys a file the user owns. Bad inputs and faults while writing: test_cli_upscale_faults.py."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import REPO, cli, smooth_image, tiny_generator, write_photo
from PIL import Image

from srgan.cli import main
from srgan.commands.plan import output_path, shard


def write(path, channels=3, size=(12, 10), mode=None):
    arr = (smooth_image(size[1], size[0], channels) * 255).astype(np.uint8)
    img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def run(*args):
    return CliRunner().invoke(main, ["upscale", *map(str, args)], catch_exceptions=False)


def test_help_shows_examples():
    result = CliRunner().invoke(main, ["upscale", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--outscale" in result.output


def test_folder_with_a_corrupt_file_does_the_rest_and_exits_1(tmp_path, tiny_model_path):
    src = tmp_path / "in"
    write(src / "a.png")
    write(src / "sub" / "b.jpg")
    write(src / "grey.png", channels=1, mode="L")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    out = tmp_path / "out"
    result = run(src, "-o", out, "-m", tiny_model_path, "-q")
    assert result.exit_code == 1
    assert "broken.png" in result.output and "3 upscaled" in result.output
    assert Image.open(out / "a_x4.png").size == (48, 40)
    assert Image.open(out / "sub" / "b_x4.jpg").size == (48, 40)
    assert Image.open(out / "grey_x4.png").mode == "L"
    assert not (out / "broken_x4.png").exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, tiny_model_path):
    src = write(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_x4.png").write_bytes(b"precious")
    result = run(src, "-o", out, "-m", tiny_model_path, "-q")
    assert result.exit_code == 0 and "1 skipped" in result.output
    assert (out / "a_x4.png").read_bytes() == b"precious"
    result = run(src, "-o", out, "-m", tiny_model_path, "-q", "--overwrite")
    assert result.exit_code == 0
    assert Image.open(out / "a_x4.png").size == (48, 40)


def test_outscale_ext_suffix_and_rgba(tmp_path, tiny_model_path):
    src = write(tmp_path / "logo.png", channels=4, mode="RGBA")
    out = tmp_path / "out"
    result = run(src, "-o", out, "-m", tiny_model_path, "-q", "--outscale", "2",
                 "--format", "webp", "--suffix", "_big")
    assert result.exit_code == 0, result.output
    img = Image.open(out / "logo_big.webp")
    assert img.size == (24, 20) and img.mode == "RGBA"


def test_missing_input_and_bad_model_are_clear(tmp_path, tiny_model_path):
    result = run(tmp_path / "nope.png", "-o", tmp_path / "o", "-m", tiny_model_path, "-q")
    assert result.exit_code == 1 and "nope.png: no such file" in result.output
    result = CliRunner().invoke(main, ["upscale", str(write(tmp_path / "a.png")), "-o",
                                       str(tmp_path / "o"), "-m", str(tmp_path / "x.pth")])
    assert result.exit_code == 1 and "no such model" in result.output


def test_output_paths_and_shards(tmp_path):
    assert output_path(tmp_path / "in" / "d" / "x.gif", tmp_path / "in", tmp_path / "o", "_x4",
                       "auto") == tmp_path / "o" / "d" / "x_x4.png"
    assert output_path(tmp_path / "x.JPG", None, tmp_path, "", "auto").name == "x.jpg"
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items


# --------------------------------------------------------------------------- upscale
def test_upscale_never_replaces_its_input_even_with_overwrite(tmp_path, tiny_model_path):
    # item 2: `-o io --suffix ""` named the output like the input
    src = write_photo(tmp_path / "io" / "p.png")
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = cli("upscale", src, "-o", tmp_path / "io", "--suffix", "", "-m", tiny_model_path,
                  "-q", *extra)
        assert res.exit_code == 1, res.output
        assert "is one of the inputs" in res.output and "use --overwrite" not in res.output
        assert src.read_bytes() == before


def test_upscale_in_place_never_replaces_a_photo_named_like_an_output(tmp_path,
                                                                     tiny_model_path):
    """`d/b_x4.png` is the user's photo, not an earlier output (it carries no srgan mark):
    it is an input like the others, and the upscale of b.png does not replace it."""
    folder = tmp_path / "d"
    write_photo(folder / "b.png")
    photo = write_photo(folder / "b_x4.png", size=(20, 16))
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = cli("upscale", folder, "-o", folder, "-m", tiny_model_path, "-q", *extra)
        assert res.exit_code == 1, res.output
        assert photo.read_bytes() == before and "b_x4.png is one of the inputs" in res.output
        if not extra:  # the photo was not taken for an earlier output
            assert "earlier output" not in res.output
    assert Image.open(folder / "b_x4_x4.png").size == (80, 64)  # upscaled, as an input is
    # a file given by name, written into its own folder: the same rule
    lone = write_photo(tmp_path / "e" / "c.png")
    mine_not = write_photo(tmp_path / "e" / "c_x4.png", size=(20, 16))
    before = mine_not.read_bytes()
    res = cli("upscale", lone, "-o", lone.parent, "-m", tiny_model_path, "-q", "--overwrite")
    assert res.exit_code == 1 and "not written by srgan" in res.output, res.output
    assert mine_not.read_bytes() == before
    # our own earlier output (marked) is still left out, and replaced with --overwrite
    mine = tmp_path / "f"
    write_photo(mine / "a.png")
    for extra in ([], ["--overwrite"]):
        res = cli("upscale", mine, "-o", mine, "-m", tiny_model_path, "-q", *extra)
        assert res.exit_code == 0, res.output
    assert "1 earlier output(s)" in res.output
    assert sorted(p.name for p in mine.iterdir()) == ["a.png", "a_x4.png"]


def test_upscale_outputs_in_the_input_folder_are_not_upscaled_again(tmp_path, tiny_model_path):
    # item 4: rerunning into a folder inside (or equal to) the input folder grew x16, x64
    folder = tmp_path / "photos"
    write_photo(folder / "a.png")
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
    src = write_photo(tmp_path / "in" / "a.png")
    res = cli("upscale", src, "-o", tmp_path / "deep" / "out", "-m", tiny_model_path, "-q",
              "--suffix", suffix)
    assert res.exit_code == 2 and "--suffix" in res.output
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["a.png"]


def test_upscale_cpu_only_torch_and_cuda_is_a_clear_error(tmp_path, tiny_model_path,
                                                          monkeypatch):
    # item 10: an AssertionError traceback from torch before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(main, ["upscale", str(write_photo(tmp_path / "a.png")), "-o",
                                    str(tmp_path / "o"), "-m", str(tiny_model_path),
                                    "--device", "cuda"])
    assert res.exit_code == 2 and not isinstance(res.exception, AssertionError)  # usage error
    assert "--device cuda" in res.output and "--device cpu" in res.output


def test_upscale_an_overlong_name_does_not_stop_the_valid_files(tmp_path, tiny_model_path):
    # item 11: a traceback in collect_inputs, and nothing processed
    good = write_photo(tmp_path / "good.png")
    res = cli("upscale", tmp_path / ("n" * 300 + ".png"), good, "-o", tmp_path / "o",
              "-m", tiny_model_path, "-q")
    assert res.exit_code == 1
    assert "name too long" in res.output.lower() and "1 upscaled" in res.output
    assert (tmp_path / "o" / "good_x4.png").is_file()


def test_upscale_output_names_of_255_bytes_work(tmp_path, tiny_model_path):
    # item 12: the temporary name was 14 bytes longer than the output name
    stem = "s" * (255 - len("_x4.png"))
    src = write_photo(tmp_path / f"{stem}.png")
    res = cli("upscale", src, "-o", tmp_path / "o", "-m", tiny_model_path, "-q")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "o" / f"{stem}_x4.png").size == (48, 40)


def test_upscale_negative_tile_pad_is_refused_up_front(tmp_path, tiny_model_path):
    # item 13: accepted, then every file failed with a NumPy broadcast error
    res = cli("upscale", write_photo(tmp_path / "a.png"), "-o", tmp_path / "o", "-m",
              tiny_model_path, "--tile-pad", "-3")
    assert res.exit_code == 2 and "--tile-pad" in res.output
    assert not (tmp_path / "o").exists()


def test_upscale_dash_o_file_name(tmp_path, tiny_model_path):
    # friction: `-o big.png` made a folder named big.png
    src = write_photo(tmp_path / "a.png")
    res = cli("upscale", src, "-o", tmp_path / "big.png", "-m", tiny_model_path, "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "big.png").is_file() and Image.open(tmp_path / "big.png").size == (48, 40)
    assert str(tmp_path / "big.png") in res.output  # a single-file run says where it went
    res = cli("upscale", src, write_photo(tmp_path / "b.png"), "-o", tmp_path / "two.png",
              "-m", tiny_model_path, "-q")
    assert res.exit_code == 2 and "output folder" in res.output
    assert not (tmp_path / "two.png").exists()


def test_upscale_existing_file_as_output_folder_fails_before_computing(tmp_path,
                                                                       tiny_model_path,
                                                                       monkeypatch):
    # friction: failed with a bare [Errno 17] only after every image was computed
    from srgan.inference import Upscaler

    computed = []
    monkeypatch.setattr(Upscaler, "upscale",
                        lambda self, *a, **k: computed.append(1))
    (tmp_path / "notes").write_text("mine")
    res = cli("upscale", write_photo(tmp_path / "a.png"), "-o", tmp_path / "notes", "-m",
              tiny_model_path, "-q")
    assert res.exit_code == 1 and "not a folder" in res.output and "Errno" not in res.output
    assert computed == [] and (tmp_path / "notes").read_text() == "mine"


def test_upscale_webp_too_large_is_refused_before_computing(tmp_path, tiny_model_path,
                                                            monkeypatch):
    from srgan.inference import Upscaler

    monkeypatch.setattr(Upscaler, "upscale", lambda *a, **k: pytest.fail("computed"))
    src = write_photo(tmp_path / "wide.png", size=(4200, 2))  # x4: 16800 > WebP's 16383
    res = cli("upscale", src, "-o", tmp_path / "o", "--format", "webp", "-m", tiny_model_path,
              "-q")
    assert res.exit_code == 1 and "16383" in res.output


def test_upscale_outscale_names_say_the_real_scale(tmp_path, tiny_model_path):
    src = write_photo(tmp_path / "a.png")
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
    src = write_photo(tmp_path / "a.png", mode="RGBA")
    rgba = np.array(Image.open(src))
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(src)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "srgan", "upscale", str(src), "-o", str(tmp_path / "o"), "-m",
         str(tiny_model_path), "--format", "jpg", "--precision", "fp16", "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "warn" in ln.lower()]
    assert any(ln.startswith(f"warning: {tmp_path / 'o' / 'a_x4.jpg'}: ") for ln in lines), lines
    assert any(ln.startswith("warning: fp16 on the CPU") for ln in lines), lines
    assert all(ln.startswith("warning: ") for ln in lines), lines
    assert "UserWarning" not in res.stderr and "warnings.warn" not in res.stderr


def test_upscale_flags_a_model_whose_output_is_all_non_finite(tmp_path):
    # item 8: such a model gave black (or white) images with exit status 0
    from srgan.weights import save_generator

    net = tiny_generator()
    with torch.no_grad():
        net.tail.weight.fill_(1e38)  # finite weights, output overflows to inf / NaN
    model = save_generator(net, tmp_path / "overflow.safetensors")
    good = write_photo(tmp_path / "a.png")
    res = cli("upscale", good, "-o", tmp_path / "o", "-m", model, "-q")
    assert res.exit_code == 1 and "NaN or infinite" in res.output
    assert f"{good}: " in res.output and not (tmp_path / "o" / "a_x4.png").exists()


def test_a_second_shipped_model_gets_its_own_output_name(tmp_path):
    # running the README in order, -m srgan_mse_x4 skipped the file srresnet_x4 had written
    src = write_photo(tmp_path / "p.png")
    out = tmp_path / "out"
    res = cli("upscale", src, "-o", out)
    assert res.exit_code == 0 and (out / "p_x4.png").is_file()
    res = cli("upscale", src, "-o", out, "-m", "srgan_mse_x4")
    assert res.exit_code == 0, res.output
    assert "1 upscaled, 0 skipped" in res.output and (out / "p_srgan_mse_x4.png").is_file()
    res = cli("upscale", src, "-o", out, "-m", "srgan_mse_x4", "--outscale", "2")
    assert res.exit_code == 0 and (out / "p_srgan_mse_x2.png").is_file()
    assert "nothing upscaled" not in res.output


def test_a_run_where_every_file_was_skipped_says_so(tmp_path, tiny_model_path):
    src = write_photo(tmp_path / "p.png")
    args = ("upscale", src, "-o", tmp_path / "out", "-m", tiny_model_path)
    assert "nothing upscaled" not in cli(*args).output
    res = cli(*args)
    assert res.exit_code == 0 and "0 upscaled, 1 skipped" in res.output
    assert "nothing upscaled: every output exists already" in res.output
    assert "--overwrite" in res.output and "-o" in res.output


def test_a_single_image_of_two_or_three_tiles_shows_tile_progress(tmp_path, tiny_model_path,
                                                                  monkeypatch):
    # a 960x540 photo is 2 tiles at the default budget: it sat at "0/1" with no tile bar,
    # with --tta as without
    import srgan.commands.upscale as upscale_command

    bars = []

    class Recording(upscale_command.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.steps, self.shown = [], not self.disable  # close() disables it
            bars.append(self)

        def update(self, n=1):
            self.steps.append(n)
            return super().update(n)

    monkeypatch.setattr(upscale_command, "tqdm", Recording)
    src = tmp_path / "wide.png"
    Image.fromarray((smooth_image(16, 32) * 255).astype(np.uint8)).save(src)  # 2 tiles
    for extra in ([], ["--tta"]):
        bars.clear()
        res = cli("upscale", src, "-o", tmp_path / f"out{len(extra)}", "-m", tiny_model_path,
                  "--tile", "16", "--tile-pad", "0", *extra)
        assert res.exit_code == 0, res.output
        assert "wide.png:" in res.output and "/2 [" in res.output and "tile/s" in res.output
        tiles = [b for b in bars if b.unit == "tile"]
        # one bar for the image, fed by the engine's tiles (not 8 passes a tile with --tta)
        assert len(tiles) == 1 and tiles[0].total == 2 and tiles[0].shown, extra
        assert sum(tiles[0].steps) == 2 and all(n >= 1 for n in tiles[0].steps), extra
    res = cli("upscale", src, "-o", tmp_path / "q", "-m", tiny_model_path, "--tile", "16", "-q")
    assert "tile" not in res.output
