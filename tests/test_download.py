"""`srgan data download div2k` against a local HTTP server on 127.0.0.1 (Range support,
interrupted transfers, a server that ignores Range, checksum errors, offline, zip-slip)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from srgan.commands.data import data
from srgan.datasets import div2k
from srgan.datasets.div2k import Archive, download_div2k
from srgan.datasets.download import DownloadError, download, safe_extract


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


class Server:
    """Serves `files` (name -> bytes); records each request's Range header. With
    `redirect_to` (a path, "/cdn/") set, a request outside that folder is answered 302 to the
    same name in it, as Hugging Face's /resolve/ URLs redirect to their CDN."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.ranges: list[str | None] = []
        self.honour_range = True
        self.cut_after: int | None = None  # close the connection after this many bytes
        self.redirect_to: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if outer.redirect_to and not self.path.startswith(outer.redirect_to):
                    self.send_response(302)
                    self.send_header("Location", outer.redirect_to + name)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = 0
                if rng and outer.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if outer.cut_after is not None:
                    payload = payload[: outer.cut_after]
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/div2k/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def archive_of(name: str, folder: str, payload: bytes) -> Archive:
    return Archive(name, len(payload), hashlib.sha256(payload).hexdigest(), folder)


@pytest.fixture
def div2k_like():
    """Small zips with DIV2K's layout, and the table describing them."""
    hr = make_zip({"DIV2K_train_HR/0001.png": b"hr-1" * 500, "DIV2K_train_HR/0002.png": b"x"})
    lr = make_zip({"DIV2K_train_LR_bicubic/X4/0001x4.png": b"lr-1" * 50})
    files = {"DIV2K_train_HR.zip": hr, "DIV2K_train_LR_bicubic_X4.zip": lr}
    table = {
        "train_hr": archive_of("DIV2K_train_HR.zip", "DIV2K_train_HR", hr),
        "train_lr_x4": archive_of("DIV2K_train_LR_bicubic_X4.zip",
                                  "DIV2K_train_LR_bicubic/X4", lr),
    }
    return files, table


def test_download_and_extract_into_the_training_layout(div2k_like, tmp_path, monkeypatch):
    files, table = div2k_like
    monkeypatch.setattr(div2k, "DIV2K_ARCHIVES", table)
    with Server(files) as server:
        res = CliRunner().invoke(data, ["download", "div2k", str(tmp_path / "DIV2K"),
                                        "--base-url", server.url, "--parts",
                                        "train_hr,train_lr_x4"])
        assert res.exit_code == 0, res.output
        assert (tmp_path / "DIV2K/DIV2K_train_HR/0001.png").read_bytes() == b"hr-1" * 500
        assert (tmp_path / "DIV2K/DIV2K_train_LR_bicubic/X4/0001x4.png").is_file()
        assert (tmp_path / "DIV2K/downloads/DIV2K_train_HR.zip").is_file()
        assert "data.train=[" in res.output
        # a second run finds everything done and asks the server nothing
        count = len(server.ranges)
        again = CliRunner().invoke(data, ["download", "div2k", str(tmp_path / "DIV2K"),
                                          "--base-url", server.url, "--parts", "train_hr"])
        assert again.exit_code == 0 and "already there" in again.output
        assert len(server.ranges) == count


def test_partial_download_resumes_with_a_range_request(div2k_like, tmp_path):
    files, table = div2k_like
    arc = table["train_hr"]
    body = files[arc.file]
    dest = tmp_path / arc.file
    part = tmp_path / (arc.file + ".part")
    part.write_bytes(body[:700])  # an earlier attempt stopped here
    with Server(files) as server:
        download(server.url + arc.file, dest, arc.size, arc.sha256, progress=False)
        assert server.ranges == ["bytes=700-"]
    assert dest.read_bytes() == body and not part.exists()


def test_connection_cut_mid_way_is_resumed(div2k_like, tmp_path):
    files, table = div2k_like
    arc = table["train_hr"]
    with Server(files) as server:
        server.cut_after = 600  # every response stops after 600 bytes
        dest = tmp_path / arc.file
        download(server.url + arc.file, dest, arc.size, arc.sha256, progress=False, retries=5)
        assert server.ranges[0] is None and server.ranges[1] == "bytes=600-"
    assert dest.read_bytes() == files[arc.file]


def test_server_ignoring_range_restarts_cleanly(div2k_like, tmp_path):
    files, table = div2k_like
    arc = table["train_hr"]
    (tmp_path / (arc.file + ".part")).write_bytes(b"garbage" * 10)
    with Server(files) as server:
        server.honour_range = False
        download(server.url + arc.file, tmp_path / arc.file, arc.size, arc.sha256,
                 progress=False)
    assert (tmp_path / arc.file).read_bytes() == files[arc.file]


def test_checksum_and_size_mismatches_are_errors(div2k_like, tmp_path):
    files, table = div2k_like
    arc = table["train_hr"]
    with Server(files) as server:
        with pytest.raises(DownloadError, match="SHA-256.*deleted, run the command again"):
            download(server.url + arc.file, tmp_path / "a.zip", arc.size, "0" * 64,
                     progress=False)
        assert not (tmp_path / "a.zip.part").exists() and not (tmp_path / "a.zip").exists()
        with pytest.raises(DownloadError, match="expected 12345"):
            download(server.url + arc.file, tmp_path / "b.zip", 12345, None, progress=False)
        with pytest.raises(DownloadError, match="HTTP 404"):
            download(server.url + "absent.zip", tmp_path / "c.zip", None, None, progress=False)


def test_offline_is_a_clear_error(tmp_path, div2k_like, monkeypatch):
    _, table = div2k_like
    monkeypatch.setattr(div2k, "DIV2K_ARCHIVES", table)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(data, ["download", "div2k", str(tmp_path / "d"), "--base-url",
                                    f"http://127.0.0.1:{port}/", "--parts", "train_hr"])
    assert res.exit_code == 1
    assert "cannot download" in res.output and "--base-url" in res.output
    assert "Traceback" not in res.output


def test_unsafe_zip_members_are_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(make_zip({"ok/a.png": b"a", "../outside.txt": b"x"}))
    with pytest.raises(DownloadError, match="unsafe member"):
        safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "out" / "ok").exists()
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a zip"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out")


def test_the_official_table_matches_the_expected_layout():
    assert set(div2k.DIV2K_ARCHIVES) == {"train_hr", "valid_hr", "train_lr_x4", "valid_lr_x4"}
    for arc in div2k.DIV2K_ARCHIVES.values():
        assert len(arc.sha256) == 64 and arc.size > 10_000_000
    with pytest.raises(DownloadError, match="unknown DIV2K part"):
        download_div2k("/nonexistent", parts=["train_x3"])


def test_a_benchmark_set_name_says_where_the_set_comes_from(tmp_path):
    """`srgan data download bsd100` was a bare 'invalid choice': a standard benchmark set that
    srgan does not download (it downloads div2k, set5 and set14) gets whose set it is and how
    to point at one's own copy; any other name is refused as well, naming the three."""
    for name, author in (("BSD100", "Berkeley"), ("urban100", "Huang")):
        res = CliRunner().invoke(data, ["download", name, str(tmp_path / "d")])
        assert res.exit_code == 2, res.output
        text = " ".join(res.output.split())
        assert author in text and "not downloaded by srgan (it downloads div2k, set5, set14)" \
            in text, text
        assert f"--data path/to/{name}" in text and "--data-root DIR" in text
        assert "docs/faq.md" in text and "Traceback" not in res.output
    res = CliRunner().invoke(data, ["download", "imagenet", str(tmp_path / "d")])
    assert res.exit_code == 2 and "srgan downloads div2k, set5, set14" in res.output
    assert not (tmp_path / "d").exists()  # nothing made for a refused name
    help_text = CliRunner().invoke(data, ["download", "--help"]).output
    assert "{div2k,set5,set14}" in help_text and "data download set5" in help_text


def test_a_wrong_archive_put_by_hand_is_kept_and_said_so(tmp_path, div2k_like, monkeypatch):
    """The offline error says to put the archive in downloads/ by hand; one that does not
    match (size or SHA-256) is renamed aside, never deleted, and the reason is printed."""
    files, table = div2k_like
    monkeypatch.setattr(div2k, "DIV2K_ARCHIVES", table)
    arc = table["train_hr"]
    placed = tmp_path / "d" / "downloads" / arc.file
    placed.parent.mkdir(parents=True)
    for attempt, payload in enumerate([b"my own zip", files[arc.file][:-1] + b"?"]):
        placed.write_bytes(payload)
        with socket.socket() as s:  # offline: the error names what was kept, and why
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        res = CliRunner().invoke(data, ["download", "div2k", str(tmp_path / "d"), "--base-url",
                                        f"http://127.0.0.1:{port}/", "--parts", "train_hr"])
        assert res.exit_code == 1
        aside = placed.with_name(arc.file + (".rejected" if attempt == 0 else ".rejected-2"))
        assert aside.read_bytes() == payload
        why = f"not used: {len(payload)} bytes, expected" if attempt == 0 else "not used: SHA-256"
        assert why in res.output and str(aside) in res.output, res.output
    with Server(files) as server:  # online: downloaded anew, the rejected files still there
        res = CliRunner().invoke(data, ["download", "div2k", str(tmp_path / "d"), "--base-url",
                                        server.url, "--parts", "train_hr"])
        assert res.exit_code == 0, res.output
    assert placed.read_bytes() == files[arc.file]
    assert sorted(p.name for p in placed.parent.glob("*.rejected*")) == [
        arc.file + ".rejected", arc.file + ".rejected-2"]
