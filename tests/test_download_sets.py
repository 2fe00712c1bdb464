"""`srgan data download set5 / set14` against a local HTTP server on 127.0.0.1: archives with
the mirror's layout (Set5_HR.tar.gz holding Set5_HR/baby.png ...), made here from small
synthetic images whose digests stand in for the recorded ones; every image checked, a
differing one named and its archive kept aside, nothing of one's own replaced. The recorded
digests themselves are held against the project's copies of the sets (skipped without them).
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SHARED, make_images
from test_download import Server

from srgan.cli import main
from srgan.commands.data import data
from srgan.datasets import standard_sets
from srgan.datasets.standard_sets import STANDARD_SET_ARCHIVES, StandardSet
from srgan.evaluate.methods import resolve_dataset

NAMES = {"set5": ("baby.png", "bird.png"), "set14": ("baboon.png", "zebra.png")}


def make_tar(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A .tar.gz of `entries` (member path -> bytes), with a directory entry for each folder
    (as `tar czf` writes), and symlinks `links` (member path -> where it points)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for folder in sorted({p.rsplit("/", 1)[0] for p in entries if "/" in p}):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for path, payload in entries.items():
            info = tarfile.TarInfo(path)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for path, target in (links or {}).items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


@pytest.fixture
def sets(tmp_path, monkeypatch):
    """Small real PNGs for Set5 and Set14, the hash table monkeypatched to them, and the
    archives with the mirror's layout: key -> (images, archive bytes)."""
    out = {}
    for seed, (key, names) in enumerate(NAMES.items()):
        made = make_images(tmp_path / "made" / key, len(names), (48, 40), seed=10 * seed)
        images = {n: p.read_bytes() for n, p in zip(names, sorted(made.iterdir()), strict=True)}
        spec = STANDARD_SET_ARCHIVES[key]
        monkeypatch.setitem(STANDARD_SET_ARCHIVES, key, StandardSet(
            spec.name, spec.archive, "http://127.0.0.1:9/unused/",
            {n: hashlib.sha256(b).hexdigest() for n, b in images.items()}))
        folder = spec.archive.removesuffix(".tar.gz")  # Set5_HR
        out[key] = images, make_tar({f"{folder}/{n}": b for n, b in images.items()})
    return out


def serve_at_default(monkeypatch, server: Server, key: str) -> None:
    """Point the set's default mirror at `server`, behind a redirect like Hugging Face's."""
    spec = STANDARD_SET_ARCHIVES[key]
    base = server.url.replace("/div2k/", f"/datasets/eugenesiow/{spec.name}/resolve/main/data/")
    monkeypatch.setitem(STANDARD_SET_ARCHIVES, key, StandardSet(
        spec.name, spec.archive, base, spec.images))
    server.redirect_to = "/cdn/"


def offline_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_set5_and_set14_download_checked_into_a_folder_found_by_name(sets, tmp_path,
                                                                    monkeypatch):
    dest = tmp_path / "sets"
    for key, name in (("set5", "Set5"), ("set14", "Set14")):
        images, archive = sets[key]
        with Server({f"{name}_HR.tar.gz": archive}) as server:
            serve_at_default(monkeypatch, server, key)
            res = CliRunner().invoke(data, ["download", name, str(dest)])  # any case
            assert res.exit_code == 0, res.output
            assert server.ranges == [None]  # one request, after the redirect
            assert f"--data-root {dest} --data {name}" in res.output
            assert f"data.val={dest / name}" in res.output
            for n, payload in images.items():
                assert (dest / name / n).read_bytes() == payload
            assert sorted(p.name for p in (dest / name).iterdir()) == sorted(images)
            assert (dest / "downloads" / f"{name}_HR.tar.gz").read_bytes() == archive
            again = CliRunner().invoke(data, ["download", key, str(dest)])
            assert again.exit_code == 0 and "already there" in again.output
            assert server.ranges == [None]  # the second run asked nothing
    assert resolve_dataset("Set5", dest, {}) == dest / "Set5"  # --data-root DEST --data Set5
    r = CliRunner().invoke(main, ["benchmark", "-m", "bicubic", "--data-root", str(dest),
                                  "--data", "Set5", "Set14", "--no-lpips", "-q",
                                  "-o", str(tmp_path / "bench")])
    assert r.exit_code == 0, r.output
    assert "Set14" in (tmp_path / "bench" / "results.md").read_text(encoding="utf-8")


def test_a_set_downloaded_to_data_benchmark_is_found_without_a_root(sets, tmp_path,
                                                                   monkeypatch):
    """The README's `srgan data download set5 data/benchmark`: then `--data Set5` and
    `data.val=Set5` find it from that folder, as a user's clone has no ../shared/data."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="srgan data download set5 data/benchmark"):
        resolve_dataset("Set5", None, {})
    _, archive = sets["set5"]
    with Server({"Set5_HR.tar.gz": archive}) as server:
        res = CliRunner().invoke(data, ["download", "set5", "data/benchmark",
                                        "--base-url", server.url])
    assert res.exit_code == 0, res.output
    assert resolve_dataset("Set5", None, {}) == Path("data/benchmark/Set5")


def test_an_image_that_differs_keeps_the_archive_aside_and_writes_nothing(sets, tmp_path):
    images, good = sets["set5"]
    dest = tmp_path / "d"
    bad = dict(images, **{"bird.png": images["bird.png"][:-1] + b"?"})
    cases = [
        (make_tar({f"Set5_HR/{n}": b for n, b in bad.items()}),
         "Set5_HR/bird.png is not Set5's bird.png (SHA-256 "),
        (make_tar({"Set5_HR/baby.png": images["baby.png"]},
                  links={"Set5_HR/bird.png": "/etc/passwd"}), "bird.png not in it"),
        (b"<html>rate limited</html>", "not a readable tar archive"),
    ]
    for i, (archive, why) in enumerate(cases):
        with Server({"Set5_HR.tar.gz": archive}) as server:
            res = CliRunner().invoke(data, ["download", "set5", str(dest),
                                            "--base-url", server.url])
        assert res.exit_code == 1 and "Traceback" not in res.output
        text = " ".join(res.output.split())
        aside = dest / "downloads" / ("Set5_HR.tar.gz.rejected" + (f"-{i + 1}" if i else ""))
        assert why in text and f"kept as {aside}" in text and "--base-url" in text, text
        assert aside.read_bytes() == archive
        assert not (dest / "Set5").exists()  # nothing written from a rejected archive
    with Server({"Set5_HR.tar.gz": good}) as server:  # the right one: accepted
        res = CliRunner().invoke(data, ["download", "set5", str(dest), "--base-url",
                                        server.url, "--delete-archives"])
    assert res.exit_code == 0, res.output
    assert (dest / "Set5" / "bird.png").read_bytes() == images["bird.png"]
    assert sorted(p.name for p in (dest / "downloads").iterdir()) == [
        "Set5_HR.tar.gz.rejected", "Set5_HR.tar.gz.rejected-2", "Set5_HR.tar.gz.rejected-3"]


def test_an_archive_put_by_hand_is_used_offline_and_paths_cannot_leave(sets, tmp_path):
    """The offline error says to put the archive in downloads/; one there is used without a
    request. Members are matched by file name only, so `../` in them writes nothing outside."""
    images, _ = sets["set5"]
    dest = tmp_path / "d"
    res = CliRunner().invoke(data, ["download", "set5", str(dest), "--base-url", offline_url()])
    assert res.exit_code == 1 and "cannot download" in res.output
    assert str(dest / "downloads" / "Set5_HR.tar.gz") in " ".join(res.output.split())
    placed = dest / "downloads" / "Set5_HR.tar.gz"
    placed.write_bytes(make_tar({f"../../{n}": b for n, b in images.items()}))
    res = CliRunner().invoke(data, ["download", "set5", str(dest), "--base-url", offline_url()])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (dest / "Set5").iterdir()) == sorted(images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "made"]


def test_an_image_of_ones_own_is_never_replaced(sets, tmp_path):
    dest = tmp_path / "d"
    mine = dest / "Set5" / "baby.png"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my mod-cropped baby")
    _, archive = sets["set5"]
    with Server({"Set5_HR.tar.gz": archive}) as server:
        res = CliRunner().invoke(data, ["download", "set5", str(dest), "--base-url", server.url])
        assert server.ranges == []  # refused before downloading anything
    assert res.exit_code == 1 and f"{mine} is there and is not Set5's baby.png" in res.output
    assert mine.read_bytes() == b"my mod-cropped baby"
    res = CliRunner().invoke(data, ["download", "set5", str(dest), "--parts", "train_hr"])
    assert res.exit_code == 2 and "--parts is for div2k" in res.output


def test_the_mirror_is_the_hugging_face_layout():
    for key, name, count in (("set5", "Set5", 5), ("set14", "Set14", 14)):
        spec = STANDARD_SET_ARCHIVES[key]
        assert spec.base_url + spec.archive == ("https://huggingface.co/datasets/eugenesiow/"
                                                f"{name}/resolve/main/data/{name}_HR.tar.gz")
        assert spec.name == name and len(spec.images) == count
    assert standard_sets.MIRROR.startswith("https://")


@pytest.mark.skipif(not (SHARED / "data" / "benchmark" / "Set14").is_dir(),
                    reason="the project's copies of Set5/Set14 (../shared/data) are absent")
def test_the_recorded_digests_are_those_of_the_images_the_tables_were_measured_on():
    for spec in STANDARD_SET_ARCHIVES.values():
        folder = SHARED / "data" / "benchmark" / spec.name
        actual = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in folder.glob("*.png")}
        assert actual == spec.images, spec.name
