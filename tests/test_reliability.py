"""Issue 8, as an attacker and an unlucky user: the bad/odd image corpus through every entry
point (`srgan upscale`, `srgan benchmark`, the training data loader), faults while writing
(read-only folders, files that appear mid-run, disk full for real on a tiny tmpfs and
simulated), unreadable files for real (capabilities dropped when running as root), odd names
and symlink loops, and model files that attack the loaders (pickles that would run code,
safetensors with lying headers or absurd metadata).

Every case must give a correct output or one clear error line naming the file, and the other
files of the batch must still be done. The corpus is generated (tests/image_corpus.py); the
network is a tiny random one (conftest.tiny_model_path), so the whole file takes seconds.
SIGKILL-resume and NaN batches are covered by the training tests, the server by
test_reliability_server.py, and the long fuzzing runs by fuzz/ (not run here).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from image_corpus import make_corpus
from safetensors.torch import save_file

from srgan import atomic, imageio
from srgan.cli import main
from srgan.commands.upscale import output_path
from srgan.data import DataError, load_training_set, load_validation_set
from srgan.imageio import display_path, find_images, from_array, read_image, to_array, write_image
from srgan.inference import Upscaler
from srgan.weights import CARD_KEY, CONFIG_KEY, ModelFileError, load_generator, read_metadata

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny convolutions on 2 busy cores: one thread is ~100x faster than two spinning."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


def cli(*args: object):
    return CliRunner().invoke(main, [a if isinstance(a, str) else str(a) for a in args])


def error_lines(output: str, prefix: str, path: Path) -> list[str]:
    """Report lines (`error: <file>: ...`, `skipped <file>: ...`) about one file: named by
    display_path, or as str(path) that stderr shows with \\udcXX escapes (non-UTF-8 names)."""
    shown = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    heads = (f"{prefix}{display_path(path)}: ", f"{prefix}{shown}: ")
    return [line for line in output.splitlines() if line.startswith(heads)]


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_png(path: Path | bytes, h: int = 16, w: int = 16, seed: int = 0) -> Path:
    return write_image(from_array(rgb(h, w, seed)), path)


def expected_channels(channels: int, ext: str) -> int:
    alpha = channels in (2, 4)
    if ext in (".jpg", ".jpeg", ".bmp"):
        return channels - 1 if alpha else channels
    if ext == ".webp" and channels in (1, 2):
        return 3 + alpha
    return channels


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_big_enough(corpus):
    _, cases = corpus
    assert len(cases) >= 30
    assert {c.expect for c in cases} == {"ok", "error"}


def test_upscale_corpus_each_file_output_or_one_error_line(corpus, tiny_model_path, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    r = cli("upscale", folder, "-o", out, "-m", tiny_model_path, "-q")
    assert r.exit_code == 1, r.output  # some files are bad: reported, exit status 1
    # where the CLI puts each file; two inputs that map to one output (animated.gif and
    # animated.png -> animated_x4.png) must be reported, never silently overwritten
    planned: dict[Path, Path] = {}
    collides: dict[Path, Path] = {}
    for f in find_images([folder]):
        dst = output_path(f, folder, out, "_x4", "auto")
        if dst in planned:
            collides[f] = planned[dst]
        else:
            planned[dst] = f
    dst_of = {src: dst for dst, src in planned.items()}
    up = Upscaler.from_pretrained(tiny_model_path, device="cpu")
    ok = failed = 0
    for case in cases:
        if case.path.is_dir() and not case.path.is_symlink():
            continue  # a folder named x.png is walked into (it is empty), not read
        lines = error_lines(r.output, "error: ", case.path)
        if case.path in collides:
            assert len(lines) == 1 and "would also be written by" in lines[0], case
            failed += 1
            continue
        dst = dst_of[case.path]
        if case.expect == "error":
            assert len(lines) == 1, (case, lines)
            assert case.error is None or case.error in lines[0].lower(), lines
            assert not os.path.lexists(dst)
            failed += 1
            continue
        assert lines == [], lines
        got = read_image(dst)
        w, h = case.size
        assert got.size == (4 * w, 4 * h), case
        ext = dst.suffix.lower()
        assert got.channels == expected_channels(case.channels, ext), (case, got.channels)
        assert got.bit_depth == (case.bit_depth if ext == ".png" else 8), case
        if ext == ".png":  # lossless: exactly the network's output, quantised
            want = up.upscale_image(read_image(case.path))
            dt = np.uint16 if got.bit_depth == 16 else np.uint8
            diff = np.abs(to_array(got, dt).astype(np.int64) - to_array(want, dt).astype(np.int64))
            assert diff.max() <= 1, (case, diff.max())
        ok += 1
    assert f"{ok} upscaled, 0 skipped, {failed} failed" in r.output
    assert ok >= 30 and failed >= 14
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


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


def test_training_loader_corpus_uses_good_files_and_reports_bad_ones(corpus):
    folder, cases = corpus
    logs: list[str] = []
    crop = 12
    ts = load_training_set([folder], crop=crop, scale=4, log=logs.append)
    names = set(ts.hr.names)
    for case in cases:
        if case.path.is_dir() and not case.path.is_symlink():
            continue
        mine = [line for line in logs if str(case.path) in line
                or display_path(case.path) in line]
        if case.expect == "error":
            assert str(case.path) not in names
            assert len(mine) == 1 and "skipping unreadable" in mine[0], (case, mine)
            assert case.error is None or case.error in mine[0].lower(), mine
        elif min(case.size) >= crop:
            assert str(case.path) in names and mine == [], (case, mine)
        else:
            assert len(mine) == 1 and "smaller than" in mine[0], (case, mine)
    lr, hr = ts.batch(8)
    assert lr.shape == (8, 3, 3, 3) and hr.shape == (8, 3, 12, 12)
    assert torch.isfinite(lr).all() and float(hr.min()) >= 0 and float(hr.max()) <= 1
    val = load_validation_set(folder, 4, log=logs.append)
    assert len(val) >= 20 and all(v.hr.shape[1] % 4 == 0 for v in val)


def test_training_loader_with_only_bad_files_is_an_error_naming_the_folder(corpus, tmp_path):
    folder, cases = corpus
    bad = tmp_path / "bad"
    bad.mkdir()
    for case in cases:
        if case.expect == "error" and case.path.is_file() and not case.path.is_symlink():
            shutil.copy(case.path, bad / case.path.name)
    logs: list[str] = []
    with pytest.raises(DataError, match=f"no usable training image in {bad}"):
        load_training_set([bad], crop=8, scale=4, log=logs.append)
    assert len(logs) == len(list(bad.iterdir())) >= 10


def test_non_utf8_names_in_logs_are_printable(tmp_path):
    """A training run's log lines go to stdout and log files: a non-UTF-8 file name must not
    make them unencodable (print() on a UTF-8 terminal raises UnicodeEncodeError)."""
    folder = tmp_path / "set"
    folder.mkdir()
    write_png(folder / "good.png", 32, 32)
    write_png(os.fsencode(folder) + b"/small_\xe9.png", 4, 4)
    (Path(os.fsdecode(os.fsencode(folder) + b"/broken_\xff.png"))).write_bytes(b"junk")
    logs: list[str] = []
    load_training_set([folder], crop=16, scale=4, log=logs.append)
    assert len(logs) == 2
    for line in logs:
        line.encode("utf-8")


# --------------------------------------------------------------------------- odd names, loops


def test_non_utf8_folder_and_file_names_through_upscale(tmp_path, tiny_model_path):
    src = Path(os.fsdecode(os.fsencode(tmp_path) + b"/in/\xff dir"))
    src.mkdir(parents=True)
    write_png(src / "x.png")
    bad = Path(os.fsdecode(os.fsencode(src) + b"/bad_\xe9.png"))
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    r = cli("upscale", tmp_path / "in", "-o", out, "-m", tiny_model_path, "-q")
    assert r.exit_code == 1
    assert os.path.isfile(os.fsencode(out) + b"/\xff dir/x_x4.png")
    lines = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: {display_path(bad)}: not an image file (or not a format srgan "
                     "reads)"]
    lines[0].encode("utf-8")  # printable as it is


def test_symlink_loops_are_walked_once(tmp_path, tiny_model_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_png(src / "a.png", seed=1)
    write_png(src / "sub" / "b.png", seed=2)
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)
    (src / "self").symlink_to(".", target_is_directory=True)
    (src / "sub" / "c.png").symlink_to(src / "sub" / "c.png")  # a link to itself (ELOOP)
    out = tmp_path / "out"
    r = cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q")
    assert r.exit_code == 1 and "2 upscaled, 0 skipped, 1 failed" in r.output, r.output
    assert len(error_lines(r.output, "error: ", src / "sub" / "c.png")) == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a_x4.png", "sub/b_x4.png"]
    logs: list[str] = []
    ts = load_training_set([src], crop=8, scale=4, log=logs.append)
    assert len(ts) == 2 and len(logs) == 1


# --------------------------------------------------------------------------- faults writing


def test_output_that_appears_mid_run_is_not_clobbered(tmp_path, tiny_model_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        write_png(src / name, seed=i)
    out = tmp_path / "out"
    real = imageio.read_quantized

    def racing_read(path, *args, **kwargs):
        if Path(path).name == "b.png":  # another process writes b's output meanwhile
            out.mkdir(exist_ok=True)
            (out / "b_x4.png").write_bytes(b"precious")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(imageio, "read_quantized", racing_read)
    r = cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q")
    assert r.exit_code == 1 and "2 upscaled, 0 skipped, 1 failed" in r.output, r.output
    assert (out / "b_x4.png").read_bytes() == b"precious"
    assert "already exists" in error_lines(r.output, "error: ", src / "b.png")[0]
    assert read_image(out / "c_x4.png").size == (64, 64)
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.png", "b_x4.png", "c_x4.png"]


def test_disk_full_midway_keeps_earlier_outputs_and_leaves_no_partial_file(
    tmp_path, tiny_model_path, monkeypatch
):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        write_png(src / f"{i}.png", seed=i)
    out = tmp_path / "out"
    assert cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for i in range(4):  # new inputs: the re-run replaces every output
        write_image(from_array(rgb(16, 16, 10 + i)), src / f"{i}.png", overwrite=True)
    real = imageio._write_chunk
    writes_to_2: list[int] = []

    def enospc_midway_through_2(fh, data) -> None:
        target = atomic._live.get(os.readlink(f"/proc/self/fd/{fh.fileno()}"), "")
        if target.endswith("/2_x4.png"):  # its temp file
            writes_to_2.append(len(data))
            if len(writes_to_2) == 2:  # the signature is on disk, then half of the next write
                real(fh, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        real(fh, data)

    monkeypatch.setattr(imageio, "_write_chunk", enospc_midway_through_2)
    r = cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q", "--overwrite")
    assert r.exit_code == 1 and "3 upscaled, 0 skipped, 1 failed" in r.output, r.output
    assert "disk full" in error_lines(r.output, "error: ", src / "2.png")[0]
    assert len(writes_to_2) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no temp file
    assert (out / "2_x4.png").read_bytes() == before["2_x4.png"]  # the old one, whole
    for name in ("0_x4.png", "1_x4.png", "3_x4.png"):
        assert (out / name).read_bytes() != before[name]  # replaced, and complete:
        assert read_image(out / name).size == (64, 64)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """Mount a tmpfs of a given size (root with CAP_SYS_ADMIN only); unmounted afterwards."""
    mounts: list[Path] = []

    def mount(size: int) -> Path:
        target = tmp_path / f"tmpfs{len(mounts)}"
        target.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                            str(target)], capture_output=True, timeout=20)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()})")
        mounts.append(target)
        return target

    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    yield mount
    for target in mounts:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=20)


def test_real_disk_full_on_a_tiny_tmpfs(tmp_path, tiny_model_path, tiny_tmpfs):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        write_png(src / f"{i}.png", 40, 40, seed=i)
    ref = tmp_path / "ref"
    assert cli("upscale", src, "-o", ref, "-m", tiny_model_path, "-q").exit_code == 0
    sizes = sorted(p.stat().st_size for p in ref.iterdir())
    page = 4096
    room = sum(-(-s // page) * page for s in sizes[:2]) + page  # about two files fit
    out = tiny_tmpfs(room)
    r = cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q")
    assert r.exit_code == 1, r.output
    written = sorted(p.name for p in out.iterdir())
    failed = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert written and failed and len(written) + len(failed) == 6, (written, failed)
    assert all("disk full" in line for line in failed), failed
    for name in written:  # whole files, byte for byte what a roomy disk got
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


_PERMISSION_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from click.testing import CliRunner
    from srgan.cli import main
    from srgan.data import load_training_set
    root, model = Path(sys.argv[1]), sys.argv[2]
    res = {}
    try:
        open(root / "in" / "locked.png", "rb").close()
        res["enforced"] = False
    except PermissionError:
        res["enforced"] = True
    if res["enforced"]:
        run = lambda *a: CliRunner().invoke(main, [str(x) for x in a])
        r = run("upscale", root / "in", "-o", root / "out", "-m", model, "-q")
        res["upscale"] = [r.exit_code, r.output]
        r = run("upscale", root / "in" / "a.png", "-o", root / "ro", "-m", model, "-q")
        res["readonly"] = [r.exit_code, r.output]
        r = run("upscale", root / "in" / "a.png", "-o", root / "ro" / "new", "-m", model, "-q")
        res["readonly_parent"] = [r.exit_code, r.output]
        r = run("benchmark", "-m", model, "--data", root / "in", "--crop-border", "0",
                "-o", root / "bench", "--device", "cpu", "--no-lpips", "-q")
        res["benchmark"] = [r.exit_code, r.output]
        logs = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ts = load_training_set([root / "in"], crop=16, scale=4, log=logs.append)
        res["train"] = [sorted(ts.hr.names), logs, [str(w.message) for w in caught]]
    print(json.dumps(res))
""")


def test_unreadable_files_and_unwritable_folders_for_real(tmp_path, tiny_model_path):
    """Run as a process that lacks CAP_DAC_OVERRIDE (dropped with setpriv when we are root),
    so the permission bits are really enforced."""
    src = tmp_path / "in"
    (src / "private").mkdir(parents=True)
    write_png(src / "a.png", seed=1)
    write_png(src / "b.png", seed=2)
    write_png(src / "private" / "hidden.png", seed=3)
    locked = write_png(src / "locked.png", seed=4)
    (tmp_path / "ro").mkdir()
    script = tmp_path / "perm.py"
    script.write_text(_PERMISSION_SCRIPT)
    cmd = [sys.executable, str(script), str(tmp_path), str(tiny_model_path)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv: cannot drop CAP_DAC_OVERRIDE")
        cmd = ["setpriv", "--inh-caps=-all",
               "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    locked.chmod(0)
    (src / "private").chmod(0)
    (tmp_path / "ro").chmod(0o500)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    finally:
        locked.chmod(0o644)
        (src / "private").chmod(0o755)
        (tmp_path / "ro").chmod(0o755)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if not res["enforced"]:
        pytest.skip("file permissions are not enforced for this process")
    code, output = res["upscale"]
    assert code == 1 and "2 upscaled, 0 skipped, 1 failed" in output, output
    assert error_lines(output, "error: ", locked) == [f"error: {locked}: permission denied"]
    assert "private" in output and "folder skipped" in output  # the unreadable folder
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.png", "b_x4.png"]
    code, output = res["readonly"]
    assert code == 1 and "permission denied" in output and str(tmp_path / "ro") in output
    assert list((tmp_path / "ro").iterdir()) == []
    code, output = res["readonly_parent"]
    assert code == 1 and "Permission denied" in output
    code, output = res["benchmark"]
    assert code == 0 and error_lines(output, "skipped ", locked) == [
        f"skipped {locked}: permission denied"]
    names, logs, caught = res["train"]
    assert names == [str(src / "a.png"), str(src / "b.png")]
    assert [line for line in logs if "locked.png" in line and "permission denied" in line]
    assert any("private" in w and "folder skipped" in w for w in caught), caught


# --------------------------------------------------------------------------- model files


class _Evil:
    """Unpickling this runs code: it writes a marker file (a real payload would do worse)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Pickles that would run code: raw pickles and torch-zip checkpoints, under the names a
    user might be handed (.pth, .pt, .ckpt, .bin, and one disguised as .safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    raw = pickle.dumps({"state_dict": _Evil(marker)}, protocol=2)
    for name in ("raw.pth", "raw.ckpt", "disguised.safetensors", "model.bin"):
        (folder / name).write_bytes(raw)
        files[name] = folder / name
    for name in ("zip.pt", "vgg19.pth"):
        torch.save({"features.0.weight": torch.zeros(1), "evil": _Evil(marker)}, folder / name)
        files[name] = folder / name
    return files


def test_the_evil_files_really_run_code_when_unpickled(tmp_path):
    """The payloads are live (else the refusal tests below could not fail)."""
    marker = tmp_path / "ran"
    files = evil_files(tmp_path / "evil", marker)
    pickle.loads(files["raw.pth"].read_bytes())
    assert marker.read_text() == "pwned"
    marker.unlink()
    torch.load(files["zip.pt"], weights_only=False)
    assert marker.exists()


def test_malicious_pickles_are_refused_everywhere_without_running(tmp_path, tiny_model_path):
    from srgan.nets.vgg import VGGFeatures, load_vgg19_state_dict
    from srgan.train import checkpoint as ckpt

    marker = tmp_path / "ran"
    files = evil_files(tmp_path / "evil", marker)
    for name, path in files.items():
        with pytest.raises(ModelFileError, match=str(path)):
            load_generator(path)
        assert not marker.exists(), name
    img = write_png(tmp_path / "a.png")
    r = cli("upscale", img, "-o", tmp_path / "out", "-m", files["zip.pt"], "-q")
    assert r.exit_code == 1 and "pickle-based checkpoints are not loaded" in r.output
    assert not (tmp_path / "out").exists()
    r = cli("benchmark", "-m", files["raw.pth"], "--data", tmp_path, "-o", tmp_path / "b",
            "--no-lpips", "-q")
    assert r.exit_code == 1 and "pickle" in r.output
    # VGG weights go through torch.load(weights_only=True): refused before any code runs
    for path in (files["vgg19.pth"], files["raw.pth"], files["disguised.safetensors"]):
        with pytest.raises(Exception, match="(?i)weights only|unsupported|header|pickle"):
            load_vgg19_state_dict(path)
        with pytest.raises(Exception):  # noqa: B017 - any refusal; the point is the marker
            VGGFeatures("vgg22", weights=path)
        assert not marker.exists()
    # training resume: a poisoned newest checkpoint is skipped, the previous one used
    run = tmp_path / "run" / "checkpoints"
    ckpt.save_checkpoint({"step": 10, "generator": {"w": torch.ones(2)}}, run, 10, keep=5)
    shutil.copy(files["zip.pt"], run / ckpt.checkpoint_name(20))
    logs: list[str] = []
    path, state = ckpt.load_latest(run, log=logs.append)
    assert path.name == ckpt.checkpoint_name(10) and state["step"] == 10
    assert len(logs) == 1 and ckpt.checkpoint_name(20) in logs[0]
    with pytest.raises(ckpt.CheckpointError, match="unreadable checkpoint"):
        ckpt.load_checkpoint(files["raw.pth"])
    r = cli("export", files["zip.pt"], "-o", tmp_path / "x.safetensors")
    assert r.exit_code == 1 and "unreadable checkpoint" in r.output
    assert not marker.exists()
    try:
        from srgan.serve.app import create_app
    except ImportError:
        return
    with pytest.raises(ModelFileError, match="pickle"):
        create_app([str(files["raw.pth"])])
    assert not marker.exists()


def _parts(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _put(path: Path, header: dict, body: bytes, length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + body)
    return path


def _with_config(header: dict, config: str | None = None, card: str | None = None) -> dict:
    header = dict(header)
    meta = dict(header["__metadata__"])
    if config is not None:
        meta[CONFIG_KEY] = config
    if card is not None:
        meta[CARD_KEY] = card
    header["__metadata__"] = meta
    return header


@pytest.mark.parametrize("attack", [
    "length_2^63", "length_past_eof", "offsets_past_eof", "offsets_overlap", "shape_lies",
    "dtype_unknown", "metadata_not_strings", "config_deep_nesting", "config_infinite_scale",
    "config_infinite_output_range", "config_unknown_arch", "config_is_a_list",
    "truncated_header", "truncated_data",
])
def test_lying_safetensors_get_a_clear_error_fast(tmp_path, tiny_model_path, attack):
    header, body = _parts(tiny_model_path)
    key = next(k for k in header if k != "__metadata__" and header[k]["shape"])
    entry = header[key]
    bad = tmp_path / "bad.safetensors"
    if attack == "length_2^63":
        _put(bad, header, body, length=2**63)
    elif attack == "length_past_eof":
        _put(bad, header, body, length=len(json.dumps(header)) + len(body) + 10)
    elif attack == "offsets_past_eof":
        _put(bad, {**header, key: {**entry, "data_offsets": [0, 2**40]}}, body)
    elif attack == "offsets_overlap":
        a, b = entry["data_offsets"]
        _put(bad, {**header, key: {**entry, "data_offsets": [a + 4, b + 4]}}, body)
    elif attack == "shape_lies":
        _put(bad, {**header, key: {**entry, "shape": [2**20, 2**20]}}, body)
    elif attack == "dtype_unknown":
        _put(bad, {**header, key: {**entry, "dtype": "F128"}}, body)
    elif attack == "metadata_not_strings":
        _put(bad, {**header, "__metadata__": {CONFIG_KEY: {"scale": 4}}}, body)
    elif attack == "config_deep_nesting":
        _put(bad, _with_config(header, "[" * 100_000 + "]" * 100_000), body)
    elif attack == "config_infinite_scale":
        _put(bad, _with_config(header, '{"scale": 1e999}'), body)
    elif attack == "config_infinite_output_range":
        _put(bad, _with_config(header, '{"scale": 4, "num_blocks": 1, "channels": 8, '
                                       '"output_range": [-1, 1e999]}'), body)
    elif attack == "config_unknown_arch":
        _put(bad, _with_config(header, '{"arch": "resnet50"}'), body)
    elif attack == "config_is_a_list":
        _put(bad, _with_config(header, "[4, 16, 64]"), body)
    elif attack == "truncated_header":
        bad.write_bytes(tiny_model_path.read_bytes()[:100])
    else:
        bad.write_bytes(tiny_model_path.read_bytes()[:-7])
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match=str(bad)):
        load_generator(bad)
    assert time.perf_counter() - t0 < 2.0


def test_garbage_card_does_not_stop_a_good_model(tmp_path, tiny_model_path):
    header, body = _parts(tiny_model_path)
    path = _put(tmp_path / "m.safetensors", _with_config(header, card="[" * 50_000), body)
    _, card = read_metadata(path)
    assert card.name == ""
    assert load_generator(path).scale == 4


def test_special_files_posing_as_models_are_refused(tmp_path):
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    (tmp_path / "dir.safetensors").mkdir()
    os.mkfifo(tmp_path / "fifo.safetensors")
    for path in (Path("/dev/zero"), link, tmp_path / "dir.safetensors",
                 tmp_path / "fifo.safetensors"):
        with pytest.raises(ModelFileError, match="no such model file"):
            load_generator(path)  # and never blocks reading


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def test_tiny_file_claiming_a_big_network_is_refused_without_allocating(tmp_path):
    """Shown with 8 blocks x 512 channels (~230 MB if built), which is safe to try; the
    limits allow 256 x 1024 (~20 GB), which is not."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    except OSError:
        pytest.skip("cannot reset the peak RSS here")
    path = tmp_path / "big.safetensors"
    save_file({"head.0.weight": torch.zeros(1)}, str(path),
              metadata={CONFIG_KEY: json.dumps({"num_blocks": 8, "channels": 512})})
    assert path.stat().st_size < 300
    base = _peak_rss_mb()
    with pytest.raises(ModelFileError, match="missing"):
        load_generator(path)
    assert _peak_rss_mb() - base < 50  # a 226 MB network was not allocated
