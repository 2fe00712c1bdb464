"""`srgan upscale clip.mp4 -o out/`: the command-line side of video upscaling.

`srgan.commands.upscale` adds these options and hands the planned video jobs over here
(`run_videos`); the output rules were applied when the jobs were planned
(`srgan.commands.plan`): an input is never replaced, an existing output is kept unless
--overwrite, every output is written to a temporary name and renamed.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from srgan.commands.options import FiniteFloatRange
from srgan.commands.plan import Job
from srgan.commands.summary import Tally, failure_line, take_planned
from srgan.video import CONTAINERS, EncodeOptions, VideoError, Window, require_av

MAX_SECONDS = 10**7  # --start/--duration: 115 days, beyond any video (and any timestamp)

VIDEO_HELP = """
\b
Videos (pip install 'srgan[video]'):
  srgan upscale clip.mp4 -o out/                  # out/clip_x4.mp4: H.264, audio copied
  srgan upscale clip.mp4 -o out/ --start 60 --duration 5   # try five seconds first
  srgan upscale clip.mkv -o big.mkv --lossless    # bit-exact RGB H.264 (large files)
  srgan upscale clips/ -o up/ --crf 14 --codec libx265
  --resume is not supported: an interrupted video starts over (no partial file is left).
"""


def video_options(f: Callable) -> Callable:
    """The video-only options of `srgan upscale` (images ignore them)."""
    options = [
        click.option("--crf", type=FiniteFloatRange(0, 63), default=18, show_default=True,
                     help="Video: constant-quality level (lower is better and larger)."),
        click.option("--codec", default="libx264", show_default=True,
                     help="Video: FFmpeg encoder (libx264, libx265, libvpx-vp9, ffv1 ...)."),
        click.option("--lossless", is_flag=True,
                     help="Video: bit-exact RGB H.264 (libx264rgb, qp 0) instead of --codec."),
        click.option("--start", type=FiniteFloatRange(0, MAX_SECONDS), default=0.0,
                     help="Video: begin this many seconds in."),
        click.option("--duration", type=FiniteFloatRange(0, MAX_SECONDS, min_open=True),
                     default=None,
                     help="Video: upscale only this many seconds."),
    ]
    for option in reversed(options):
        f = option(f)
    f.__doc__ = inspect.cleandoc(f.__doc__ or "") + "\n" + VIDEO_HELP  # click dedents it
    return f


def check_codec(codec: str, crf: float, lossless: bool) -> EncodeOptions:
    """The encoder settings, checked before anything runs: a misspelt encoder fails now,
    not after the first frame of every video."""
    opts = EncodeOptions(codec=codec, crf=crf, lossless=lossless)
    try:
        require_av().Codec(opts.encoder, "w")
    except VideoError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception:
        raise click.BadParameter(f"{codec!r} is not an FFmpeg video encoder in PyAV's build "
                                 "(try libx264, libx265, libvpx-vp9, ffv1, mpeg4)",
                                 param_hint="--codec") from None
    return opts


def container_extension(opts: EncodeOptions) -> str:
    """.mkv for codecs MP4 does not carry, else .mp4."""
    return ".mkv" if opts.encoder in ("ffv1", "utvideo", "png") else ".mp4"


def run_videos(jobs: list[Job], errors: list[str], outdir: Path, upscaler: Any, *,
               opts: EncodeOptions, window: Window, outscale: float | None, tta: bool,
               overwrite: bool, quiet: bool) -> Tally:
    """Upscale this torchrun process's share of the planned videos, one after the other."""
    from srgan.outputs import OutputError, prepare_folder

    try:
        prepare_folder(outdir)
    except OutputError as exc:
        raise click.ClickException(str(exc)) from None
    tally = Tally("videos", outdir=outdir, failures=list(errors))
    started = time.perf_counter()
    for job in take_planned(jobs, tally):
        try:
            upscale_one(job, upscaler, opts=opts, window=window, outscale=outscale, tta=tta,
                        overwrite=overwrite, quiet=quiet)
            tally.done += 1
            tally.written.append(job.target)
        except (VideoError, OSError) as exc:
            tally.fail(failure_line(job.source, exc))
    tally.seconds = time.perf_counter() - started
    if len(tally.written) != 1:
        tally.written = []
    return tally


def upscale_one(job: Job, upscaler: Any, *, opts: EncodeOptions, window: Window,
                outscale: float | None, tta: bool, overwrite: bool, quiet: bool) -> None:
    """One video into its target, through a temporary file, with a frame bar."""
    from tqdm import tqdm

    from srgan.atomic import atomic_write
    from srgan.video import upscale_video

    fmt = CONTAINERS.get(job.target.suffix.lower(), "mp4")
    with tqdm(unit="frame", desc=job.source.name, disable=quiet, file=sys.stderr,
              leave=True) as bar:
        def total(n: int | None) -> None:
            bar.total = n
            bar.refresh()

        def emit(fh: Any) -> None:
            upscale_video(upscaler, job.source, fh, fmt, outscale=outscale, tta=tta, opts=opts,
                          window=window, progress=bar.update, total=total,
                          warn=lambda m: tqdm.write(f"warning: {m}", file=sys.stderr))

        job.target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(job.target, emit, overwrite=overwrite)
