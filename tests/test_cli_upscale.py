import numpy as np
from click.testing import CliRunner
from helpers import smooth_image
from PIL import Image

from srgan.cli import main
from srgan.commands.upscale import output_path, shard


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
                 "--ext", "webp", "--suffix", "_big")
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
