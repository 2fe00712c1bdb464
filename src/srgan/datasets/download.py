"""HTTP downloads that resume (Range requests), verify size and SHA-256, show progress, and
fail with a clear message offline; zip extraction that refuses paths leaving the target."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or extraction failed; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, size: int | None, sha256: str | None) -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(f"{path}: {actual} bytes, expected {size}")
    if sha256 is not None:
        digest = sha256_of(path)
        if digest != sha256.lower():
            raise DownloadError(f"{path}: SHA-256 {digest}, expected {sha256}")


def set_aside(path: Path) -> Path:
    """Rename `path` to `path.rejected` (or .rejected-2, -3 ...: never over another file) and
    return the new name: a file that is not what was expected is kept, never deleted, as the
    user may have put it there."""
    aside = path.with_name(path.name + ".rejected")
    n = 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{path.name}.rejected-{n}")
    os.rename(path, aside)
    return aside


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _content_range_start(value: str | None) -> int | None:
    """'bytes 100-199/200' -> 100."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def download(
    url: str,
    dest: Path,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 3,
    log: Callable[[str], None] = _stderr,
) -> Path:
    """Fetch `url` to `dest`, resuming a previous `dest.part`; verify size and SHA-256.

    A complete, verified `dest` is not fetched again; one that fails verification (a file put
    there by hand, say) is renamed aside, kept, and said so through `log`. A `.part` (our own
    partial download) that fails verification is deleted so the next attempt starts clean.
    """
    dest = Path(dest)
    rejected = ""
    if dest.is_file():
        try:
            _verify(dest, size, sha256)
            return dest
        except DownloadError as exc:
            why = str(exc).removeprefix(f"{dest}: ")
            aside = set_aside(dest)
            rejected = (f" (the file that was at {dest} is not the expected one: {why}; "
                        f"kept as {aside})")
            log(f"{dest}: not used: {why}; kept as {aside.name}, downloading the file anew")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for _attempt in range(retries + 1):
        try:
            _fetch(url, part, size, progress, timeout)
            last_error = None
            break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code not in (408, 429, 500, 502,
                                                                             503, 504):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            last_error = exc
            if part.exists() and part.stat().st_size == 0:
                part.unlink()
            if isinstance(exc, urllib.error.URLError) and not part.exists():
                break  # nothing came through at all: offline, DNS, refused; do not insist
    if last_error is not None:
        reason = getattr(last_error, "reason", last_error)
        have = part.stat().st_size if part.exists() else 0
        kept = f" ({have} bytes kept in {part}; run again to resume)" if have else ""
        raise DownloadError(
            f"cannot download {url}: {reason}{kept}. Check the network connection, or use a "
            f"mirror with --base-url, or put the file at {dest} by hand.{rejected}"
        ) from last_error
    try:
        _verify(part, size, sha256)
    except DownloadError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{exc}; the download was deleted, run the command again{rejected}"
                            ) from None
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset >= size:
        return  # complete already (verified by the caller)
    headers = {"User-Agent": "srgan-downloader", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the .part is complete
            return
        raise
    with response:
        if offset and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(f"{url}: server resumed at byte {start}, asked {offset}")
            mode = "ab"
        else:  # 200: the server ignores Range; start over
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else size
        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"{url}: the server has {total} bytes, expected {size} (wrong file or mirror?)"
            )
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=part.name.removesuffix(".part"))
        received = 0
        try:
            with open(part, mode) as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
        finally:
            if bar is not None:
                bar.close()
        if length is not None and received < int(length):
            # http.client's read(n) returns b"" on a premature close instead of raising
            raise ConnectionError(f"connection closed after {received} of {length} bytes")


def safe_extract(archive: Path, target: Path) -> list[str]:
    """Extract a zip into `target`; members with absolute paths or `..` are refused (before
    anything is written). Returns the top-level names extracted."""
    target = Path(target)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive}: not a zip file ({exc}); delete it and run again") from exc
    with zf:
        members = zf.infolist()
        for m in members:
            p = PurePosixPath(m.filename.replace("\\", "/"))
            if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
                raise DownloadError(f"{archive}: refusing unsafe member path {m.filename!r}")
        target.mkdir(parents=True, exist_ok=True)
        tops: set[str] = set()
        for m in members:
            p = PurePosixPath(m.filename.replace("\\", "/"))
            if not p.parts:
                continue
            tops.add(p.parts[0])
            out = target.joinpath(*p.parts)
            if m.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            try:
                with zf.open(m) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            except zipfile.BadZipFile as exc:
                tmp.unlink(missing_ok=True)
                raise DownloadError(f"{archive}: corrupt member {m.filename} ({exc})") from exc
            os.replace(tmp, out)
    return sorted(tops)
