"""srgan.atomic: a file appears whole or not at all, and never clobbers what it must not."""

import os
from pathlib import Path

import pytest

from srgan.atomic import FILE_MODE, atomic_write


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_the_bytes_with_the_usual_mode(tmp_path):
    path = atomic_write(tmp_path / "a.bin", lambda fh: fh.write(b"abc"))
    assert path.read_bytes() == b"abc"
    assert path.stat().st_mode & 0o777 == FILE_MODE
    assert leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")

    def half_then_fail(fh):
        fh.write(b"new, but only ha")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_no_overwrite_refuses_even_a_file_that_appears_meanwhile(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        atomic_write(path, lambda fh: fh.write(b"new"), overwrite=False)

    other = tmp_path / "b.bin"

    def racing(fh):
        fh.write(b"ours")
        other.write_bytes(b"theirs")  # another process got there first

    with pytest.raises(FileExistsError):
        atomic_write(other, racing, overwrite=False)
    assert path.read_bytes() == b"old" and other.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_and_a_missing_folder_is_an_oserror(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    atomic_write(path, lambda fh: fh.write(b"new"))
    assert path.read_bytes() == b"new"
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "a.bin", lambda fh: fh.write(b"x"))
    assert os.listdir(tmp_path) == ["a.bin"]
