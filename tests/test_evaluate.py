"""Evaluation: the benchmark protocol, its files, and the comparison figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import cli, error_lines, write_photo
from PIL import Image

from srgan import metrics
from srgan.cli import main
from srgan.evaluate import run_benchmark
from srgan.evaluate.compare import PAD, build_comparison, choose_box, compare_images, render_grid
from srgan.evaluate.methods import Bicubic, load_methods, to_uint8
from srgan.inference import Upscaler
from srgan.nets import SRResNet
from srgan.resize import imresize, modcrop
from srgan.weights import save_generator

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "benchmark"


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth gradients plus texture, so bicubic and a model score differently."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 3 + yy / 5)], axis=2) * 200
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _photo_folder(folder: Path, photos: dict[str, tuple[int, int, int]]) -> Path:
    """`folder` with a _photo(h, w, seed) PNG for each name."""
    folder.mkdir()
    for name, (h, w, seed) in photos.items():
        Image.fromarray(_photo(h, w, seed)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two RGB images (sizes not multiples of 4), one grey, one broken file."""
    d = _photo_folder(tmp_path_factory.mktemp("tiny") / "Tiny",
                      {"a.png": (37, 42, 0), "b.png": (40, 33, 1)})
    Image.fromarray(_photo(36, 36, 2)[..., 0]).save(d / "grey.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return d


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = SRResNet(scale=4, num_blocks=1, channels=8)
    return save_generator(net.eval(), tmp_path_factory.mktemp("m") / "tiny.safetensors")


@pytest.fixture(scope="module")
def result(dataset, model_file):
    lines: list[str] = []
    res = run_benchmark([model_file], [dataset], device="cpu", lpips=False, log=lines.append)
    res.log_lines = lines
    return res


def _rgb8(path: Path) -> torch.Tensor:
    a = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(a.copy()).permute(2, 0, 1)


def test_benchmark_scores_every_good_image_with_every_method(result, dataset):
    assert result.models == ["bicubic", "tiny"]
    assert result.datasets == ["Tiny"]
    assert sorted({s.image for s in result.scores}) == ["a.png", "b.png", "grey.png"]
    assert len(result.scores) == 3 * 2
    a = next(s for s in result.scores if s.image == "a.png")
    assert (a.width, a.height) == (40, 36)  # modcropped to x4
    grey = next(s for s in result.scores if s.image == "grey.png")
    assert "grey scored as RGB" in grey.notes
    # random weights are far worse than bicubic: the columns are not mixed up
    assert result.mean("Tiny", "bicubic")["psnr_y"] > result.mean("Tiny", "tiny")["psnr_y"] + 3


def test_bad_image_is_reported_and_skipped(result, dataset):
    assert [Path(k.path).name for k in result.skipped] == ["broken.png"]
    assert len(result.log_lines) == 1
    line = result.log_lines[0]
    assert line.startswith(f"skipped {dataset / 'broken.png'}: ") and len(line) > 40


def test_bicubic_baseline_is_matlab_imresize_of_the_uint8_lr(result, dataset):
    hr = modcrop(_rgb8(dataset / "a.png"), 4)
    lr = imresize(hr, scale=0.25)
    assert lr.dtype == torch.uint8 and lr.shape == (3, 9, 10)
    sr = imresize(lr, scale=4)
    assert torch.equal(Bicubic(4)(lr), sr)
    row = next(s for s in result.scores if s.image == "a.png" and s.model == "bicubic")
    assert row.psnr_y == pytest.approx(metrics.psnr_y(sr, hr, crop_border=4), abs=1e-12)
    assert row.ssim_y == pytest.approx(metrics.ssim_y(sr, hr, crop_border=4), abs=1e-12)
    assert row.psnr_rgb == pytest.approx(metrics.psnr_rgb(sr, hr, crop_border=4), abs=1e-12)


def test_model_scores_are_its_uint8_output_against_hr(result, dataset, model_file):
    hr = modcrop(_rgb8(dataset / "b.png"), 4)
    lr = imresize(hr, scale=0.25)
    up = Upscaler.from_pretrained(model_file, device="cpu", precision="fp32")
    sr = to_uint8(up.upscale(lr.float() / 255))
    row = next(s for s in result.scores if s.image == "b.png" and s.model == "tiny")
    assert row.psnr_y == pytest.approx(metrics.psnr_y(sr, hr, crop_border=4), abs=1e-9)
    assert row.ssim_y == pytest.approx(metrics.ssim_y(sr, hr, crop_border=4), abs=1e-9)


def test_csv_markdown_json_contents(result, tmp_path):
    paths = result.write(tmp_path / "out")
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert {r["model"] for r in rows} == {"bicubic", "tiny"}
    r = next(r for r in rows if r["image"] == "a.png" and r["model"] == "bicubic")
    s = next(s for s in result.scores if s.image == "a.png" and s.model == "bicubic")
    assert float(r["psnr_y"]) == pytest.approx(s.psnr_y, abs=1e-4)
    assert float(r["ssim_y"]) == pytest.approx(s.ssim_y, abs=1e-6)
    assert r["lpips"] == "" and r["dataset"] == "Tiny"

    md = paths["markdown"].read_text()
    m = result.mean("Tiny", "bicubic")
    assert "| Dataset | bicubic | tiny |" in md
    row = next(line for line in md.splitlines() if line.startswith("| Tiny (3) |"))
    assert f"{m['psnr_y']:.2f} / {m['ssim_y']:.4f}" in row
    assert "4 border pixels" in md and "LPIPS not scored" in md
    means = [np.mean([s.psnr_y for s in result.scores if s.model == "tiny"])]
    assert f"{means[0]:.2f} /" in md

    summary = json.loads(paths["json"].read_text())
    assert summary["scale"] == 4 and summary["crop_border"] == 4 and summary["ssim"] == "wang"
    assert summary["device"] == "cpu" and summary["versions"]["torch"] == torch.__version__
    tiny = summary["datasets"]["Tiny"]
    assert tiny["images"] == 3 and len(tiny["skipped"]) == 1
    assert tiny["models"]["bicubic"]["psnr_y"] == pytest.approx(m["psnr_y"])
    assert tiny["models"]["tiny"]["seconds_per_image"] > 0


def test_paper_ssim_uses_the_daala_convention(dataset):
    res = run_benchmark(["bicubic"], [dataset], ssim="paper", crop_border=2, lpips=False)
    hr = modcrop(_rgb8(dataset / "a.png"), 4)
    sr = imresize(imresize(hr, scale=0.25), scale=4)
    row = next(s for s in res.scores if s.image == "a.png")
    assert row.ssim_y == pytest.approx(metrics.ssim_paper(sr, hr, crop_border=2), abs=1e-12)
    assert row.ssim_y != pytest.approx(metrics.ssim_y(sr, hr, crop_border=2), abs=1e-4)
    assert "daala" in res.to_markdown()


def test_lr_dir_is_matched_by_name_and_used(dataset, tmp_path):
    lr_dir = tmp_path / "LR"
    lr_dir.mkdir()
    for name in ("a", "b"):
        lr = imresize(modcrop(_rgb8(dataset / f"{name}.png"), 4), scale=0.25)
        Image.fromarray(lr.permute(1, 2, 0).numpy()).save(lr_dir / f"{name}_LRBI_x4.png")
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(lr_dir / "grey_x4.png")  # wrong size
    given = run_benchmark(["bicubic"], [dataset], lr_dirs=[lr_dir], lpips=False)
    made = run_benchmark(["bicubic"], [dataset], lpips=False)
    for name in ("a.png", "b.png"):
        g = next(s for s in given.scores if s.image == name)
        m = next(s for s in made.scores if s.image == name)
        assert g.psnr_y == m.psnr_y and g.ssim_y == m.ssim_y
    reasons = {Path(k.path).name: k.reason for k in given.skipped}
    assert "does not match HR" in reasons["grey.png"] and "broken.png" in reasons


def test_model_of_another_scale_is_refused(tmp_path):
    path = save_generator(SRResNet(scale=2, num_blocks=0, channels=4), tmp_path / "x2.safetensors")
    with pytest.raises(ValueError, match="x2, not x4"):
        load_methods([path], scale=4, device="cpu")


def test_cli_benchmark_writes_files_and_reports_skips(dataset, tmp_path):
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["benchmark", "-m", "bicubic", "--data", str(dataset),
                                  "--output", str(out), "--no-lpips", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "| Tiny (3) |" in r.stdout
    assert f"skipped {dataset / 'broken.png'}" in r.stderr
    assert {p.name for p in out.iterdir()} == {"scores.csv", "results.md", "summary.json"}


def test_cli_benchmark_fails_when_nothing_is_scored(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "x.jpg").write_bytes(b"nope")
    r = CliRunner().invoke(main, ["benchmark", "-m", "bicubic", "--data", str(d),
                                  "--output", str(tmp_path / "o"), "--no-lpips"])
    assert r.exit_code == 1
    assert "no image could be scored" in r.stderr and not (tmp_path / "o").exists()


def test_non_utf8_names_and_exact_reconstructions_are_reported(tmp_path):
    """A non-UTF-8 file name must not stop the result files being written after all the
    scoring, and shows as \\xNN like every other srgan message; a flat image that bicubic
    reconstructs exactly keeps its inf PSNR per image, but the means stay finite (capped)."""
    import os

    from srgan.evaluate.results import PSNR_CAP

    d = tmp_path / "Odd"
    d.mkdir()
    Image.fromarray(_photo(40, 40, 3)).save(d / "a.png")
    flat = Path(os.fsdecode(os.fsencode(d) + b"/flat_\xff.png"))
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(flat)
    Path(os.fsdecode(os.fsencode(d) + b"/bad_\xe9.png")).write_bytes(b"junk")
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["benchmark", "-m", "bicubic", "--data", str(d),
                                  "--output", str(out), "--no-lpips", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert f"skipped {d}/bad_\\xe9.png: " in r.stderr and "\\udc" not in r.output

    with open(out / "scores.csv", newline="", encoding="utf-8") as f:
        rows = {row["image"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"a.png", "flat_\\xff.png"}
    assert rows["flat_\\xff.png"]["psnr_y"] == "inf" == rows["flat_\\xff.png"]["psnr_rgb"]
    a_psnr = float(rows["a.png"]["psnr_y"])
    assert 20 < a_psnr < 40

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    mean = summary["datasets"]["Odd"]["models"]["bicubic"]
    assert mean["psnr_y"] == pytest.approx((a_psnr + PSNR_CAP) / 2, abs=1e-3)
    assert mean["psnr_capped"] == 1 and mean["images"] == 2
    skipped = summary["datasets"]["Odd"]["skipped"]  # exact names: JSON escapes them
    assert [k["path"] for k in skipped] == [os.fsdecode(os.fsencode(d) + b"/bad_\xe9.png")]
    md = (out / "results.md").read_text(encoding="utf-8")
    assert f"{(a_psnr + PSNR_CAP) / 2:.2f} / " in md
    assert not [line for line in md.splitlines() if line.startswith("|") and "inf" in line]
    assert f"counted as {PSNR_CAP:g} dB" in md
    assert md in r.stdout


def test_choose_box_finds_where_methods_differ_in_detail():
    a = torch.full((3, 64, 80), 100, dtype=torch.uint8)
    b = a.clone()
    b[:, :, 40:] += 30  # a tone shift over half the image: not what a reader should look at
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    b[:, 40:56, 12:28] = (100 + 40 * ((yy + xx) % 2)).to(torch.uint8)  # texture only in b
    x, y, w, h = choose_box([a, b], size=16)
    assert (w, h) == (16, 16)
    assert abs(x - 12) <= 4 and abs(y - 40) <= 4
    c = a.clone()
    c[:, :16, :16] = b[:, 40:56, 12:28]  # texture in the corner
    assert choose_box([a, c], size=16)[:2] == (0, 0)
    x, y, w, h = choose_box([a, c], size=16, border=4)  # the border is never chosen
    assert x >= 4 and y >= 4 and x < 16 and y < 16


def test_compare_png_has_the_expected_layout(dataset, model_file, tmp_path):
    out = tmp_path / "fig.png"
    r = CliRunner().invoke(main, ["compare", "-m", str(model_file), str(dataset / "a.png"),
                                  "-o", str(out), "--panel-width", "80", "--box", "8,4,16,12",
                                  "--device", "cpu"])
    assert r.exit_code == 0, r.output
    img = Image.open(out)
    assert img.format == "PNG" and img.mode == "RGB"
    assert img.width == PAD + 4 * (80 + PAD)  # LR | bicubic | tiny | HR

    methods = load_methods([model_file], device="cpu")
    fig = compare_images([dataset / "a.png"], methods, panel_width=80, box=(8, 4, 16, 12))[0]
    assert fig.image.size == img.size
    assert np.array_equal(np.asarray(fig.image), np.asarray(img))
    # The HR panel's inset is the box of the modcropped HR, enlarged x5 by nearest neighbour.
    left, top, right, bottom = fig.rects[3]["inset"]
    assert (right - left, bottom - top) == (80, 60)
    hr = modcrop(_rgb8(dataset / "a.png"), 4).permute(1, 2, 0).numpy()
    expected = hr[4:16, 8:24].repeat(5, axis=0).repeat(5, axis=1)
    assert np.array_equal(np.asarray(img)[top:bottom, left:right], expected)


def test_compare_grid_has_a_row_per_image(dataset, model_file):
    methods = load_methods([model_file], device="cpu")
    comps = [build_comparison(dataset / n, methods) for n in ("a.png", "b.png", "grey.png")]
    assert [c.box[2] for c in comps] == [9, 8, 9]  # a quarter of the smaller side
    fig = render_grid(comps, panel_width=64)
    assert fig.image.width == PAD + 5 * (64 + PAD)  # image | LR | bicubic | tiny | HR
    assert len(fig.rects) == 3
    assert fig.rects[1]["inset1"][1] > fig.rects[0]["inset1"][3]  # rows stack downwards


def test_compare_cli_skips_bad_images(dataset, tmp_path):
    r = CliRunner().invoke(main, ["compare", "-m", "bicubic", str(dataset), "-o",
                                  str(tmp_path / "figs"), "--panel-width", "64"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "a.png", "b.png", "grey.png"]
    assert "skipped" in r.stderr and "broken.png" in r.stderr


@pytest.mark.skipif(not (SHARED / "Set5").is_dir(), reason="../shared Set5 not present")
def test_set5_bicubic_is_the_papers_28_43_db():
    res = run_benchmark(["bicubic"], [SHARED / "Set5"], lpips=False)
    m = res.mean("Set5", "bicubic")
    assert m["images"] == 5
    assert m["psnr_y"] == pytest.approx(28.43, abs=0.02)
    assert m["ssim_y"] == pytest.approx(0.8104, abs=0.002)  # Wang's SSIM, as the literature


# --------------------------------------------------------------------------- NIQE
@pytest.fixture(scope="module")
def niqe_dataset(tmp_path_factory) -> Path:
    """Two images big enough for NIQE's 96x96 block after the 4-pixel crop, one too small."""
    # small.png: 92x92 after the crop
    return _photo_folder(tmp_path_factory.mktemp("niqe") / "Big",
                         {"p.png": (120, 124, 10), "q.png": (104, 140, 11),
                          "small.png": (100, 100, 12)})


@pytest.fixture(scope="module")
def niqe_result(niqe_dataset, model_file):
    return run_benchmark([model_file], [niqe_dataset], device="cpu", lpips=False, niqe=True)


def test_niqe_scores_every_method_and_the_hr_images(niqe_result, niqe_dataset):
    from srgan.niqe import niqe

    hr = modcrop(_rgb8(niqe_dataset / "p.png"), 4)
    sr = imresize(imresize(hr, scale=0.25), scale=4)
    row = next(s for s in niqe_result.scores if s.image == "p.png" and s.model == "bicubic")
    assert row.niqe == niqe(sr, crop_border=4)  # the uint8 output, border cropped
    hr_row = next(h for h in niqe_result.hr if h.image == "p.png")
    assert hr_row.niqe == niqe(hr, crop_border=4) and hr_row.niqe != row.niqe
    tiny = next(s for s in niqe_result.scores if s.image == "p.png" and s.model == "tiny")
    assert tiny.niqe is not None and tiny.niqe != row.niqe
    # too small for one block: no NIQE for it anywhere, the means over the other two
    assert all(s.niqe is None for s in niqe_result.scores if s.image == "small.png")
    assert next(h for h in niqe_result.hr if h.image == "small.png").niqe is None
    m = niqe_result.mean("Big", "bicubic")
    both = [s.niqe for s in niqe_result.scores if s.model == "bicubic" and s.niqe is not None]
    assert m["niqe"] == pytest.approx(sum(both) / 2) and m["niqe_images"] == 2
    assert m["images"] == 3
    assert niqe_result.hr_mean("Big")["niqe"] == pytest.approx(
        (hr_row.niqe + next(h for h in niqe_result.hr if h.image == "q.png").niqe) / 2)


def test_niqe_table_csv_and_json(niqe_result, tmp_path):
    paths = niqe_result.write(tmp_path / "out")
    md = paths["markdown"].read_text()
    assert "NIQE (no reference, lower is better; HR = the HR images themselves)" in md
    assert "| Dataset | bicubic | tiny | HR |" in md
    m = niqe_result.mean("Big", "bicubic")
    hr = niqe_result.hr_mean("Big")
    row = [line for line in md.splitlines() if line.startswith("| Big (3) |")][-1]
    assert f"| {m['niqe']:.3f} (2 of 3) |" in row and row.endswith(f"| {hr['niqe']:.3f} (2 of 3) |")
    assert "Not scored (smaller than NIQE's 96x96 block after the border crop): Big/small.png" in md

    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 + 3  # every method, then the HR images
    p_bic = next(r for r in rows if r["image"] == "p.png" and r["model"] == "bicubic")
    assert float(p_bic["niqe"]) == pytest.approx(
        next(s.niqe for s in niqe_result.scores if s.image == "p.png" and s.model == "bicubic"),
        abs=1e-6)
    hr_rows = [r for r in rows if r["model"] == "HR"]
    assert [r["image"] for r in hr_rows] == ["p.png", "q.png", "small.png"]
    assert hr_rows[0]["psnr_y"] == "" and float(hr_rows[0]["niqe"]) > 0
    assert hr_rows[2]["niqe"] == ""

    summary = json.loads(paths["json"].read_text())
    big = summary["datasets"]["Big"]
    assert big["hr"]["niqe"] == pytest.approx(hr["niqe"]) and big["hr"]["niqe_images"] == 2
    assert big["models"]["tiny"]["niqe"] == pytest.approx(niqe_result.mean("Big", "tiny")["niqe"])
    assert summary["niqe"] is True


def test_without_niqe_nothing_about_it_is_written(result, tmp_path):
    assert result.hr == [] and all(s.niqe is None for s in result.scores)
    paths = result.write(tmp_path / "out")
    assert "NIQE" not in paths["markdown"].read_text()
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["niqe"] for r in rows} == {""} and "HR" not in {r["model"] for r in rows}
    summary = json.loads(paths["json"].read_text())
    assert "hr" not in summary["datasets"]["Tiny"] and summary["niqe"] is False


def test_cli_benchmark_niqe_prints_the_niqe_table(niqe_dataset, tmp_path):
    r = CliRunner().invoke(main, ["benchmark", "-m", "bicubic", "--data", str(niqe_dataset),
                                  "--output", str(tmp_path / "o"), "--no-lpips", "--niqe"])
    assert r.exit_code == 0, r.output
    assert "lower is better" in r.stdout and "| Dataset | bicubic | HR |" in r.stdout


# --------------------------------------------------------------------------- set names
def test_set_names_resolve_from_data_root_env_then_shared(tmp_path, monkeypatch):
    from srgan.evaluate.methods import resolve_dataset

    work = tmp_path / "checkout"
    default = tmp_path / "shared" / "data" / "benchmark"  # ../shared/data/benchmark of work
    root, env_root = tmp_path / "root", tmp_path / "env"
    for base in (default, root, env_root):
        (base / "Set5").mkdir(parents=True)
    (default / "Set14" / "HR").mkdir(parents=True)
    work.mkdir()
    monkeypatch.chdir(work)
    env = {"SRGAN_DATA_ROOT": str(env_root)}
    assert resolve_dataset("Set5", root, env) == root / "Set5"  # --data-root first
    assert resolve_dataset("Set5", None, env) == env_root / "Set5"  # then the variable
    assert resolve_dataset("Set5", None, {}).resolve() == (default / "Set5").resolve()
    assert resolve_dataset("Set14/HR", root, env).resolve() == (default / "Set14/HR").resolve()
    assert resolve_dataset(root / "Set5", None, {}) == root / "Set5"  # full paths as given
    (work / "Set5").mkdir()
    assert resolve_dataset("Set5", root, env) == Path("Set5")  # an existing folder wins
    with pytest.raises(FileNotFoundError) as exc:
        resolve_dataset("Urban100", root, env)
    msg = str(exc.value)
    assert msg.startswith("dataset 'Urban100' not found: looked in Urban100 (as given), ")
    for where in (f"{root / 'Urban100'} (--data-root)", f"{env_root / 'Urban100'} "
                  "($SRGAN_DATA_ROOT)", "../shared/data/benchmark/Urban100 (default)"):
        assert where in msg
    assert "sets there: Set14, Set5. Urban100 (Huang" in msg
    with pytest.raises(FileNotFoundError, match=r"\$SRGAN_DATA_ROOT not set"):
        resolve_dataset("Urban100", None, {})
    (work / "file.png").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="file.png: not a folder"):
        resolve_dataset("file.png", None, {})
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_dataset(tmp_path / "absent", root, env)  # absolute: not looked up under roots


def test_a_standard_set_not_found_says_where_it_comes_from(tmp_path, monkeypatch):
    # a user from GitHub has no ../shared/data: "not found" alone left them stuck
    from srgan.evaluate.methods import resolve_dataset

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as exc:
        resolve_dataset("Set5", None, {})
    msg = str(exc.value)
    assert "Bevilacqua" in msg and "`srgan data download set5 data/benchmark` fetches it" in msg
    assert "data/benchmark/Set5 (default)" in msg  # where the download is looked for
    assert "--data path/to/Set5" in msg and "--data-root DIR" in msg
    assert "$SRGAN_DATA_ROOT" in msg and "docs/faq.md" in msg
    with pytest.raises(FileNotFoundError, match="Zeyde.*srgan data download set14 data/bench"):
        resolve_dataset("set14/HR", None, {})
    with pytest.raises(FileNotFoundError) as exc:  # a set srgan does not download
        resolve_dataset("BSD100", None, {})
    assert "Berkeley" in str(exc.value) and "neither ships nor downloads" in str(exc.value)
    with pytest.raises(FileNotFoundError) as exc:
        resolve_dataset("MyPhotos", None, {})
    assert "standard benchmark" not in str(exc.value)
    r = CliRunner().invoke(main, ["benchmark", "-m", "bicubic", "--data", "Set5",
                                  "--no-lpips", "--output", str(tmp_path / "o")])
    assert r.exit_code == 1 and "Bevilacqua" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["data", "download", "BSD100", str(tmp_path / "d")])
    assert r.exit_code == 2 and "Berkeley" in r.output and "--data-root DIR" in r.output
    assert not (tmp_path / "d").exists()


def test_cli_benchmark_takes_set_names(niqe_dataset, dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["benchmark", "-m", "bicubic", "--no-lpips", "--output", str(tmp_path / "o"),
            "--overwrite"]
    r = CliRunner().invoke(main, [*args, "--data", "Tiny", "Big", "--data-root",
                                  str(dataset.parent)])
    assert r.exit_code != 0 and "dataset 'Big' not found" in r.output
    assert f"{dataset.parent / 'Big'} (--data-root)" in r.output
    r = CliRunner().invoke(main, [*args, "--data", "Big", "--data-root", str(dataset.parent)],
                           env={"SRGAN_DATA_ROOT": str(niqe_dataset.parent)})
    assert r.exit_code == 0, r.output
    assert "| Big (3) |" in r.stdout
    r = CliRunner().invoke(main, [*args, "--data", "Tiny", "Big", "--data-root",
                                  str(dataset.parent)],
                           env={"SRGAN_DATA_ROOT": str(niqe_dataset.parent)})
    assert r.exit_code == 0, r.output
    assert "| Tiny (3) |" in r.stdout and "| Big (3) |" in r.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["dataset_paths"]["Tiny"] == str(dataset)


def test_compare_takes_a_set_name(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["compare", "-m", "bicubic", "Tiny", "--grid", "-o",
                                  str(tmp_path / "g.png"), "--panel-width", "64"],
                           env={"SRGAN_DATA_ROOT": str(dataset.parent)})
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.png").is_file()
    r = CliRunner().invoke(main, ["compare", "-m", "bicubic", "Nope"],
                           env={"SRGAN_DATA_ROOT": str(dataset.parent)})
    assert r.exit_code == 2 and "input 'Nope' not found" in r.output


@pytest.mark.skipif(not SHARED.parents[1].is_dir(), reason="../shared is absent")
def test_readme_set_names_resolve_from_a_checkout_and_niqe_orders_hr_before_bicubic(monkeypatch):
    """`--data Set5` as the README writes it, from the repository root; NIQE of the HR
    images is well below bicubic's (the literature: about 5 against 7 on Set14)."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    monkeypatch.delenv("SRGAN_DATA_ROOT", raising=False)
    res = run_benchmark(["bicubic"], ["Set5"], lpips=False, niqe=True)
    assert res.datasets == ["Set5"] and len(res.hr) == 5
    assert res.settings["dataset_paths"]["Set5"] == "../shared/data/benchmark/Set5"
    hr, bic = res.hr_mean("Set5")["niqe"], res.mean("Set5", "bicubic")["niqe"]
    assert 4 < hr < 6.5 and bic > hr + 2, (hr, bic)


def test_cli_benchmark_keeps_earlier_results_unless_overwrite(dataset, tmp_path):
    # issue 18: a second run replaced the first one's tables without a word
    out = tmp_path / "res"
    out.mkdir()
    (out / "results.md").write_text("my notes")
    args = ["benchmark", "-m", "bicubic", "--data", str(dataset), "--output", str(out),
            "--no-lpips", "--device", "cpu"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "--overwrite" in r.output and "results.md" in r.output
    assert (out / "results.md").read_text() == "my notes"
    assert not (out / "scores.csv").exists()
    r = CliRunner().invoke(main, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "| Tiny (3) |" in (out / "results.md").read_text()


def test_a_second_benchmark_says_it_kept_the_first_ones_results(dataset, tmp_path):
    # "Error: nothing scored" read as if the images had failed; it only refused to replace
    args = ["benchmark", "-m", "bicubic", "--data", str(dataset), "--output", str(tmp_path / "r"),
            "--no-lpips", "--device", "cpu"]
    assert CliRunner().invoke(main, args).exit_code == 0
    first = (tmp_path / "r" / "scores.csv").read_bytes()
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1
    assert "nothing scored" not in r.output
    assert "results of an earlier run" in r.output and "are kept" in r.output
    assert "-o/--output" in r.output and "--overwrite" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert (tmp_path / "r" / "scores.csv").read_bytes() == first


# --------------------------------------------------------------------------- odd inputs
def test_benchmark_corpus_scores_or_skips_each_file_once(corpus, tiny_model_path, tmp_path):
    folder, cases = corpus
    out = tmp_path / "bench"
    r = cli("benchmark", "-m", tiny_model_path, "--data", folder, "--crop-border", "0", "-o",
            out, "--device", "cpu", "--no-lpips", "-q")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    skipped = {s["path"]: s["reason"] for s in summary["datasets"][folder.name]["skipped"]}
    scored: dict[str, set[str]] = {}
    for row in (out / "scores.csv").read_text().splitlines()[1:]:
        scored.setdefault(row.split(",")[1], set()).add(row.split(",")[2])
    for case in cases:
        if case.path.is_dir() and not case.path.is_symlink():
            continue
        lines = error_lines(r.output, "skipped ", case.path)
        if case.expect == "error":
            assert len(lines) == 1, (case, lines)
            assert case.error is None or case.error in lines[0].lower(), lines
            assert case.name not in scored
            continue
        w, h = case.size
        if min(w // 4 * 4, h // 4 * 4) >= 11:  # big enough for the protocol: must be scored
            assert scored.get(case.path.name) == {"bicubic", "tiny_x4"}, (case, lines)
            assert lines == []
        else:  # reported once as too small, never as unreadable
            assert len(lines) == 1 and "small" in lines[0], (case, lines)
            assert str(case.path) in skipped
    assert len(scored) >= 30


# --------------------------------------------------------------------------- compare
def test_compare_never_replaces_its_input(tmp_path, tiny_model_path):
    # item 1: `-o photo.png` replaced the photo with the figure; `DIR -o DIR` every photo
    photo = write_photo(tmp_path / "photo.png", size=(32, 32))
    other = write_photo(tmp_path / "other.png", size=(32, 32))
    before = {p: p.read_bytes() for p in (photo, other)}
    for args in ([photo, "-o", photo], [tmp_path, "-o", tmp_path],
                 [photo, "-o", photo, "--overwrite"]):
        res = cli("compare", "-m", tiny_model_path, "--device", "cpu", *args)
        assert res.exit_code == 1 and "is one of the inputs" in res.output, res.output
        assert {p: p.read_bytes() for p in before} == before


def test_compare_keeps_an_existing_figure_unless_overwrite(tmp_path, tiny_model_path):
    photo = write_photo(tmp_path / "photo.png", size=(32, 32))
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
