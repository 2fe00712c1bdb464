"""`srgan upscale clip.mp4 -o out/`: the command-line side of video upscaling.

`srgan.commands.upscale` only adds these options and hands video inputs over here; the
output rules are the images' (srgan.outputs): an input is never replaced, an existing output
is kept unless --overwrite, every output is written to a temporary name and renamed.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from srgan.commands.options import FiniteFloatRange
from srgan.video import (
    CONTAINERS,
    VIDEO_EXTENSIONS,
    EncodeOptions,
    VideoError,
    Window,
    require_av,
)

MAX_SECONDS = 10**7  # --start/--duration: 115 days, beyond any video (and any timestamp)
# FFmpeg demuxers that make a file of unknown extension a video (not tty, image2, gif ...)
PROBED_CONTAINERS = frozenset({"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv",
                               "asf", "ogg", "yuv4mpegpipe", "h264", "hevc"})

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


def is_video(path: Path) -> bool:
    """A video by its extension, or (an unknown extension) by FFmpeg's container probe."""
    from srgan.imageio import IMAGE_EXTENSIONS

    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return True
    if ext in IMAGE_EXTENSIONS or not os.path.isfile(path):  # False for a name too long
        return False
    try:
        import av

        with av.open(str(path)) as c:
            names = set(c.format.name.split(","))
            return bool(c.streams.video) and bool(names & PROBED_CONTAINERS)
    except Exception:
        return False


def find_videos(inputs: tuple[Path, ...]) -> list[tuple[Path, Path | None]]:
    """(video, folder it was found in or None) for video files given or inside folders."""
    found: list[tuple[Path, Path | None]] = []
    for item in inputs:
        if os.path.isdir(item):
            for dirpath, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [(Path(dirpath) / n, item) for n in sorted(files)
                          if not n.startswith(".") and Path(n).suffix.lower() in VIDEO_EXTENSIONS]
        elif is_video(item):
            found.append((item, None))
    return found


def video_target(src: Path, root: Path | None, outdir: Path, suffix: str,
                 opts: EncodeOptions) -> Path:
    """out/clip_x4.mp4 (relative place kept for folders); .mkv for codecs MP4 does not carry."""
    rel = src.relative_to(root) if root is not None else Path(src.name)
    ext = ".mkv" if opts.encoder in ("ffv1", "utvideo", "png") else ".mp4"
    return outdir / rel.parent / f"{rel.stem}{suffix}{ext}"


def upscale_videos(
    inputs: tuple[Path, ...],
    videos: list[tuple[Path, Path | None]],
    output: Path,
    upscaler: Any,
    suffix: str,
    *,
    outscale: float | None,
    tta: bool,
    overwrite: bool,
    quiet: bool,
    crf: float,
    codec: str,
    lossless: bool,
    start: float,
    duration: float | None,
) -> Any:
    """Upscale every video (this torchrun process's share); a Tally of what came of them."""
    from tqdm import tqdm

    from srgan.atomic import atomic_write
    from srgan.commands.upscale import Tally, is_own_output, shard, unproven_target
    from srgan.device import torchrun_env
    from srgan.imageio import display_path
    from srgan.outputs import InputSet, OutputError, check_target, prepare_folder
    from srgan.video import upscale_video
    from srgan.video_checks import has_mark

    opts = EncodeOptions(codec=codec, crf=crf, lossless=lossless)
    try:  # a misspelt encoder fails now, not after the first frame of every video
        require_av().Codec(opts.encoder, "w")
    except VideoError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception:
        raise click.BadParameter(f"{codec!r} is not an FFmpeg video encoder in PyAV's build "
                                 "(try libx264, libx265, libvpx-vp9, ffv1, mpeg4)",
                                 param_hint="--codec") from None
    window = Window(start, duration)
    failures: list[str] = []
    out_file = output if output.suffix.lower() in VIDEO_EXTENSIONS else None
    if out_file is not None and (len(inputs) != 1 or len(videos) != 1):
        raise click.UsageError(f"-o {display_path(output)} names a file, but the inputs may be "
                               "several videos; give an output folder")
    outdir = output.parent if out_file is not None else output
    mine = [(v, r) for v, r in videos
            if r is not None and is_own_output(v, r, outdir, suffix, marked=has_mark)]
    if mine:
        click.echo(f"note: {len(mine)} earlier video output(s) of srgan upscale in "
                   f"{display_path(outdir)} left out", err=True)
    videos = [job for job in videos if job not in mine]
    try:
        prepare_folder(outdir)
    except OutputError as exc:
        raise click.ClickException(str(exc)) from None
    env = torchrun_env()
    rank, world = env.rank, env.world_size
    seen = InputSet(v for v, _ in videos)
    done = skipped = 0
    written = []
    started = time.perf_counter()
    for src, root in shard(videos, rank, world):
        dst = out_file or video_target(src, root, outdir, suffix, opts)
        try:
            check_target(dst, seen, overwrite=True)
        except OutputError as exc:
            failures.append(f"{display_path(src)}: not written: {exc}")
            continue
        if overwrite and (why := unproven_target(dst, src, marked=has_mark)):
            failures.append(why)
            continue
        if (dst.exists() or dst.is_symlink()) and not overwrite:
            skipped += 1
            click.echo(f"skip: {display_path(dst)} exists (use --overwrite to replace it)",
                       err=True)
            continue
        fmt = CONTAINERS.get(dst.suffix.lower(), "mp4")
        bar = tqdm(unit="frame", desc=src.name, disable=quiet, file=sys.stderr, leave=True)

        def total(n: int | None, bar: Any = bar) -> None:
            bar.total = n
            bar.refresh()

        def emit(fh: Any, src: Path = src, fmt: str = fmt, bar: Any = bar) -> None:
            upscale_video(upscaler, src, fh, fmt, outscale=outscale, tta=tta, opts=opts,
                          window=window, progress=bar.update, total=total,
                          warn=lambda m: tqdm.write(f"warning: {m}", file=sys.stderr))

        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(dst, emit, overwrite=overwrite)
            done += 1
            written.append(dst)
        except (VideoError, OSError) as exc:
            failures.append(str(exc) if display_path(src) in str(exc)
                            else f"{display_path(src)}: {exc}")
            tqdm.write(f"error: {failures[-1]}", file=sys.stderr)
        finally:
            bar.close()
    if not videos and not failures:
        failures.append("no input videos")
    return Tally("videos", done, skipped, failures, time.perf_counter() - started, outdir,
                 written if len(written) == 1 else [])
