"""What `srgan upscale` says about its run: the planned skips and refusals as they are met,
and one summary line per kind of input (images, videos), the same for both runners."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from tqdm import tqdm

from srgan.commands.plan import FAIL, SKIP, Job

__all__ = ["Tally", "failure_line", "report", "take_planned"]


@dataclass
class Tally:
    """What one kind of input (images, videos) came to: counted and reported apiece."""

    kind: str
    done: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outdir: Path | None = None
    written: list[Path] = field(default_factory=list)
    extra: str = ""

    def fail(self, message: str) -> None:
        """Count and show a failure now (above any progress bar); listed again at the end."""
        self.failures.append(message)
        tqdm.write(f"error: {message}", file=sys.stderr)


def failure_line(src: Path, exc: BaseException) -> str:
    """The one-line error for `src`: the exception's text, named by the file if it is not."""
    from srgan.imageio import display_path

    return str(exc) if display_path(src) in str(exc) else f"{display_path(src)}: {exc}"


def take_planned(jobs: list[Job], tally: Tally,
                 tick: Callable[[int], object] = lambda n: None) -> list[Job]:
    """The jobs to compute; the planned skips and refusals are shown and counted in `tally`
    (and `tick`ed off a progress bar) before anything is computed."""
    todo = []
    for job in jobs:
        if job.action == FAIL:
            tally.fail(job.message)
        elif job.action == SKIP:
            tally.skipped += 1
            tqdm.write(job.message, file=sys.stderr)
        else:
            todo.append(job)
            continue
        tick(1)
    return todo


def report(tallies: list[Tally], rank: int, world: int) -> None:
    """One summary line per kind of input (named when both ran); exit status 1 on a failure."""
    from srgan.imageio import display_path

    prefix = f"[rank {rank}/{world}] " if world > 1 else ""
    for t in tallies:
        kind = f"{t.kind}: " if len(tallies) > 1 else ""
        line = (f"{prefix}{kind}{t.done} upscaled, {t.skipped} skipped, {len(t.failures)} "
                f"failed in {t.seconds:.1f}s"
                + (f" -> {display_path(t.outdir)}" if t.done > 1 and t.outdir else "")
                + t.extra)
        click.echo(line, err=True)
        if t.skipped and not t.done and not t.failures:
            click.echo(f"{prefix}nothing upscaled: every output exists already (--overwrite "
                       "replaces them; another -o folder or --suffix keeps both)", err=True)
    written = [w for t in tallies for w in t.written]
    if len(written) == 1:
        click.echo(display_path(written[0]))  # where the one result went
    failures = [f for t in tallies for f in t.failures]
    if failures:
        click.echo("failed:\n  " + "\n  ".join(failures), err=True)
        sys.exit(1)
