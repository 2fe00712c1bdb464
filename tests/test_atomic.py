"""srgan.atomic: a file appears whole or not at all, and never clobbers what it must not."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

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


def test_a_255_byte_name_works_and_temp_names_are_short(tmp_path):
    # issue 18 item 12: the temporary name was the output name plus 14 bytes
    name = "n" * 251 + ".bin"
    seen = []
    atomic_write(tmp_path / name, lambda fh: seen.extend(os.listdir(tmp_path)))
    assert (tmp_path / name).is_file() and len(seen) == 1 and len(seen[0]) < 40


def test_stale_temporary_files_of_ours_are_removed_by_a_later_write(tmp_path):
    # issue 18 item 18: litter of a killed process stayed for ever
    import time

    from srgan import atomic

    dead = 2**22 + 12345  # above Linux's pid_max default: no such process
    old = time.time() - atomic.STALE_SECONDS - 60
    stale = tmp_path / f".srgan.{dead}.0123abcd.tmp"
    fresh = tmp_path / f".srgan.{dead}.89abcdef.tmp"  # dead, but written to just now
    alive = tmp_path / f".srgan.{os.getppid()}.deadbeef.tmp"  # a running process's
    mine = tmp_path / ".photo.png.tmp"  # not our naming: never touched
    for p in (stale, fresh, alive, mine):
        p.write_bytes(b"x")
    for p in (stale, alive, mine):
        os.utime(p, (old, old))
    atomic_write(tmp_path / "a.bin", lambda fh: fh.write(b"a"))  # the folder's first write
    assert leftovers(tmp_path) == sorted(p.name for p in (fresh, alive, mine))
    ancient = time.time() - atomic.ABANDONED_SECONDS - 60
    os.utime(alive, (ancient, ancient))
    assert atomic.remove_stale_temps(tmp_path) == [alive]


def test_a_forked_child_killed_mid_write_leaves_the_parents_temp_alone(tmp_path):
    # the signal handler and the set of files in flight are inherited by fork(): a child
    # forked while the parent writes dies of SIGTERM, and the parent's write still completes
    import signal

    from srgan import atomic

    if not atomic.install_signal_cleanup():
        pytest.skip("not the main thread")
    seen: list[list[str]] = []

    def fork_a_dying_child(fh):
        fh.write(b"in flight")
        pid = os.fork()
        if pid == 0:  # the child: dies of SIGTERM through our handler
            os.kill(os.getpid(), signal.SIGTERM)
            os._exit(3)  # not reached
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        seen.append(leftovers(tmp_path))  # the parent's temporary file, still there

    path = atomic_write(tmp_path / "a.bin", fork_a_dying_child)
    assert len(seen) == 1 and len(seen[0]) == 1
    assert seen[0][0].startswith(f".srgan.{os.getpid()}.")
    assert path.read_bytes() == b"in flight" and leftovers(tmp_path) == []


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    # item 18: a hidden .NAME.xxxx.tmp stayed behind
    # default dispositions first: under nohup the child inherits SIGHUP ignored, and atomic
    # rightly leaves an ignored signal alone (the process would not die of it)
    script = (
        "import os, signal, sys, time\n"
        "for s in (signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n"
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
