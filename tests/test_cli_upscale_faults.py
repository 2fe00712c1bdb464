"""`srgan upscale` against bad inputs and faults, as an attacker and an unlucky user (issue
8): the bad/odd image corpus (tests/image_corpus.py), odd names and symlink loops, outputs
that appear mid-run, disk full (simulated, and for real on a tiny tmpfs), unreadable files
and unwritable folders for real (capabilities dropped when running as root).

Every case must give a correct output or one clear error line naming the file, and the other
files of the batch must still be done. The same corpus goes through `srgan benchmark`
(test_evaluate.py) and the training loader (test_data.py); model files that attack the
loaders are in test_weights.py, the server in test_reliability_server.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, cli, error_lines, fill_disk, rgb, write_random_png

from srgan import imageio
from srgan.commands.plan import output_path
from srgan.data import load_training_set
from srgan.imageio import display_path, find_images, from_array, read_image, to_array, write_image
from srgan.inference import Upscaler

ROOT = REPO
pytestmark = pytest.mark.usefixtures("one_thread")


def expected_channels(channels: int, ext: str) -> int:
    alpha = channels in (2, 4)
    if ext in (".jpg", ".jpeg", ".bmp"):
        return channels - 1 if alpha else channels
    if ext == ".webp" and channels in (1, 2):
        return 3 + alpha
    return channels


def test_corpus_is_big_enough(corpus):
    _, cases = corpus
    assert len(cases) >= 30
    assert {c.expect for c in cases} == {"ok", "error"}


def test_upscale_corpus_each_file_output_or_one_error_line(corpus, tiny_model_path, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    # fp32: outputs are compared with the network's to one 16-bit level, closer than the bf16
    # mix `auto` runs on CPUs with native bf16 (within 1/255) can be for two input paths
    r = cli("upscale", folder, "-o", out, "-m", tiny_model_path, "-q", "--precision", "fp32")
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
    up = Upscaler.from_pretrained(tiny_model_path, device="cpu", precision="fp32")
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
            want = up.upscale(read_image(case.path))
            dt = np.uint16 if got.bit_depth == 16 else np.uint8
            diff = np.abs(to_array(got, dt).astype(np.int64) - to_array(want, dt).astype(np.int64))
            assert diff.max() <= 1, (case, diff.max())
        ok += 1
    assert f"{ok} upscaled, 0 skipped, {failed} failed" in r.output
    assert ok >= 30 and failed >= 14
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


# --------------------------------------------------------------------------- odd names, loops


def test_non_utf8_folder_and_file_names_through_upscale(tmp_path, tiny_model_path):
    src = Path(os.fsdecode(os.fsencode(tmp_path) + b"/in/\xff dir"))
    src.mkdir(parents=True)
    write_random_png(src / "x.png")
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
    write_random_png(src / "a.png", seed=1)
    write_random_png(src / "sub" / "b.png", seed=2)
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
        write_random_png(src / name, seed=i)
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
        write_random_png(src / f"{i}.png", seed=i)
    out = tmp_path / "out"
    assert cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for i in range(4):  # new inputs: the re-run replaces every output
        write_image(from_array(rgb(16, 16, 10 + i)), src / f"{i}.png", overwrite=True)
    writes_to_2: list[int] = []

    def midway_through_2(target: Path, n: int) -> bool:
        if target.name != "2_x4.png":
            return False
        writes_to_2.append(n)
        return n == 2  # the signature is on disk, then half of the next write

    fill_disk(monkeypatch, midway_through_2)
    r = cli("upscale", src, "-o", out, "-m", tiny_model_path, "-q", "--overwrite")
    assert r.exit_code == 1 and "3 upscaled, 0 skipped, 1 failed" in r.output, r.output
    assert "disk full" in error_lines(r.output, "error: ", src / "2.png")[0]
    assert writes_to_2 == [1, 2]  # nothing more was written into it
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
        write_random_png(src / f"{i}.png", 40, 40, seed=i)
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
    write_random_png(src / "a.png", seed=1)
    write_random_png(src / "b.png", seed=2)
    write_random_png(src / "private" / "hidden.png", seed=3)
    locked = write_random_png(src / "locked.png", seed=4)
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
