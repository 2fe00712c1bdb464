"""What `srgan upscale` will do, decided before any model runs: which inputs there are
(`discover`), where each one's output goes and whether it is upscaled, skipped or refused
(`plan_jobs`), for images and videos alike. These functions read the file system but write
nothing and print nothing; the image runner (`srgan.commands.upscale`) and the video runner
(`srgan.commands.video`) act on their result, so the output rules live here once."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from srgan.packaged import DEFAULT_MODEL
from srgan.video import VIDEO_EXTENSIONS

__all__ = [
    "DEFAULT_SUFFIX", "KEEP_EXTENSIONS", "OUTPUT_EXTENSIONS", "Found", "Job", "Plan",
    "check_output", "default_suffix", "discover", "is_own_output", "is_video", "output_path",
    "plan_jobs", "shard", "unproven_target", "video_target",
]

OUTPUT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
# Input formats we also write back as they came; anything else (GIF, TIFF, ...) becomes PNG.
KEEP_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
DEFAULT_SUFFIX = re.compile(r"_x\d+(\.\d+)?$")  # what default_suffix() makes
# FFmpeg demuxers that make a file of unknown extension a video (not tty, image2, gif ...)
PROBED_CONTAINERS = frozenset({"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv",
                               "asf", "ogg", "yuv4mpegpipe", "h264", "hevc"})
UPSCALE, SKIP, FAIL = "upscale", "skip", "fail"

Files = list[tuple[Path, Path | None]]  # (file, input folder it was found in, or None)


# ----------------------------------------------------------------- the inputs
@dataclass
class Found:
    """The inputs, each looked at once: image and video files (given, or found in a
    folder), the input folders, and inputs that cannot be used (missing, name too long ...)."""

    images: Files = field(default_factory=list)
    videos: Files = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _stat_error(item: Path, exc: OSError) -> str:
    from srgan.imageio import display_path

    if isinstance(exc, FileNotFoundError):
        return f"{display_path(item)}: no such file or folder"
    return f"{display_path(item)}: {exc.strerror or exc}"


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


def discover(inputs: tuple[Path, ...]) -> Found:
    """Every input stat'ed once; a folder walked once for images and videos together (by
    extension, hidden names skipped, sorted: `find_files`); a file given by name is a video
    by its extension or FFmpeg's probe, else an image (reading it says what is wrong)."""
    from srgan.imageio import IMAGE_EXTENSIONS, display_path, find_files

    found = Found()
    for item in inputs:
        try:
            st = os.stat(item)
        except OSError as exc:  # ENOENT, ENAMETOOLONG, EACCES, ELOOP ...
            found.errors.append(_stat_error(item, exc))
            continue
        if not stat.S_ISDIR(st.st_mode):
            (found.videos if is_video(item) else found.images).append((item, None))
            continue
        found.folders.append(item)
        files = find_files([item], IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
        for f in files:
            (found.videos if f.suffix.lower() in VIDEO_EXTENSIONS else found.images).append(
                (f, item))
        if not files:
            exts = " ".join(sorted(IMAGE_EXTENSIONS))
            found.errors.append(f"{display_path(item)}: no images in this folder "
                                f"(looked for {exts})")
    return found


# ----------------------------------------------------------------- output names
def output_path(src: Path, root: Path | None, outdir: Path, suffix: str, ext: str) -> Path:
    """Where the image `src` goes: the same relative place under `outdir`, with `suffix`
    and the extension of the output format `ext` (auto: the input's, where it can)."""
    rel = src.relative_to(root) if root is not None else Path(src.name)
    if ext == "auto":
        new_ext = src.suffix.lower() if src.suffix.lower() in KEEP_EXTENSIONS else ".png"
    else:
        new_ext = OUTPUT_EXTENSIONS[ext]
    return outdir / rel.parent / f"{rel.stem}{suffix}{new_ext}"


def video_target(src: Path, root: Path | None, outdir: Path, suffix: str, ext: str) -> Path:
    """out/clip_x4.mp4 (relative place kept for folders), `ext` the container's extension."""
    rel = src.relative_to(root) if root is not None else Path(src.name)
    return outdir / rel.parent / f"{rel.stem}{suffix}{ext}"


def default_suffix(model_scale: int, outscale: float | None, model: str = DEFAULT_MODEL,
                   denoise: float | None = None) -> str:
    """`_x4`, or `_x2` for --outscale 2: the name says the scale the file really has; a
    shipped model other than the default is named too (`_srgan_mse_x4`), and a denoise
    strength (`_dn0.5_x4`), so that trying a second model or strength beside the first does
    not skip every file as already done."""
    scale = f"_x{model_scale if outscale is None else outscale:g}"
    from srgan.packaged import shipped_files

    if denoise is not None:
        return f"_dn{denoise:g}{scale}"
    if model == DEFAULT_MODEL or model not in shipped_files("weights", ".safetensors"):
        return scale
    return f"_{re.sub(r'_x[0-9]+$', '', model)}{scale}"


def check_output(output: Path, inputs: tuple[Path, ...], found: Found,
                 image_format: str) -> tuple[Path | None, Path]:
    """(output file or None, output folder) for `-o`: a name with an image or video
    extension that is not a folder names the one output of one input file of that kind;
    anything else is a folder. A usage error (click) when the inputs do not fit."""
    import click

    from srgan.imageio import WRITE_EXTENSIONS, display_path

    ext = output.suffix.lower()
    if (ext not in WRITE_EXTENSIONS and ext not in VIDEO_EXTENSIONS) or output.is_dir():
        return None, output
    video = ext in VIDEO_EXTENSIONS
    if len(inputs) != 1 or found.folders:
        raise click.UsageError(f"-o {display_path(output)} names a file, but the inputs may "
                               f"be several {'videos' if video else 'images'}; give an "
                               "output folder")
    other = found.images if video else found.videos
    if other:
        raise click.UsageError(f"-o {display_path(output)} names "
                               f"{'a video' if video else 'an image'} file, but "
                               f"{display_path(other[0][0])} is "
                               f"{'an image' if video else 'a video'}; give a "
                               f"{'.png, .jpg' if video else '.mp4, .mkv'} name or a folder")
    if not video and image_format != "auto" and OUTPUT_EXTENSIONS[image_format] != ext:
        raise click.UsageError(f"-o {display_path(output)} does not end in .{image_format}")
    return output, output.parent


# ----------------------------------------------------------------- the rules
def is_own_output(f: Path, root: Path, outdir: Path, suffix: str,
                  marked: Callable[[Path], bool | None] | None = None) -> bool:
    """Whether `f`, found in the input folder `root`, is an output of ours: all of an output
    folder inside the input folder, or, when they are the same folder, a file named as an
    output (the suffix, or a default one: _x4, _x2, _x1.5 from an earlier --outscale) that
    carries the mark srgan writes into its files (`marked`, srgan.imageio.has_mark by
    default; None for a format without metadata, BMP, where the name has to do). Upscaling
    those again would grow x16, x64 ... on every rerun; a file of the user's that only looks
    like an output by its name is an input like any other."""
    from srgan.outputs import is_within

    if not is_within(f, outdir):
        return False
    if is_within(outdir, root) and not is_within(root, outdir):  # a sub-folder of the input
        return True
    named = (bool(suffix) and f.stem.endswith(suffix)) or DEFAULT_SUFFIX.search(f.stem) is not None
    if not named:
        return False
    if marked is None:
        from srgan.imageio import has_mark as marked
    return marked(f) is not False


def unproven_target(dst: Path, src: Path,
                    marked: Callable[[Path], bool | None] | None = None) -> str | None:
    """Why the existing `dst`, which lies beside its input (in the same folder), must not be
    replaced even with --overwrite: it does not carry srgan's mark, so it may be a file of
    the user's that only looks like an output. None where it may be replaced."""
    from srgan.imageio import display_path
    from srgan.outputs import same_file

    if not (dst.exists() or dst.is_symlink()) or not same_file(dst.parent, src.parent):
        return None
    if marked is None:
        from srgan.imageio import has_mark as marked
    if marked(dst) is True:
        return None
    return (f"{display_path(src)}: output {display_path(dst)} exists beside the inputs and was "
            "not written by srgan (it carries no srgan mark), so it is not replaced, even with "
            "--overwrite; move it or choose another -o")


def shard(items: list, rank: int, world: int) -> list:
    """Round-robin share of `items` for one torchrun process: disjoint, together complete."""
    return items[rank::world]


# ----------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Job:
    """One input, its output, and what the run does: UPSCALE, SKIP (the output exists) or
    FAIL (`message` says why, naming the file)."""

    source: Path
    target: Path
    action: str = UPSCALE
    message: str = ""


@dataclass
class Plan:
    """Jobs for each runner, and the failures that are no job: inputs that could not be
    used (reported with the images), or no video left. A runner runs when it has inputs
    (images also when there are errors, or no input at all)."""

    images: list[Job] = field(default_factory=list)
    videos: list[Job] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    video_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_images: bool = False
    run_videos: bool = False


def _judge(src: Path, dst: Path, planned: dict[Path, Path], seen, overwrite: bool,
           marked: Callable[[Path], bool | None] | None) -> Job:
    """The one rule for every output: never twice, never over an input or a checkpoint,
    never over a look-alike beside the inputs; an existing output is kept unless --overwrite."""
    from srgan.imageio import display_path, display_text
    from srgan.outputs import OutputError, check_target

    if dst in planned:
        return Job(src, dst, FAIL, f"{display_path(src)}: output {display_path(dst)} would "
                                   f"also be written by {display_path(planned[dst])}; skipped")
    planned[dst] = src
    try:
        check_target(dst, seen, overwrite=True)
    except OutputError as exc:
        return Job(src, dst, FAIL, f"{display_path(src)}: {display_text(exc)}")
    if overwrite and (why := unproven_target(dst, src, marked)):
        return Job(src, dst, FAIL, why)
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        return Job(src, dst, SKIP,
                   f"skip: {display_path(dst)} exists (use --overwrite to replace it)")
    return Job(src, dst, UPSCALE)


def _left_out(files: Files, outdir: Path, suffix: str, what: str,
              marked: Callable[[Path], bool | None] | None,
              notes: list[str]) -> Files:
    """`files` without our own earlier outputs, with a note per input folder that had some."""
    from srgan.imageio import display_path

    mine = [(f, r) for f, r in files if r is not None and is_own_output(f, r, outdir, suffix,
                                                                         marked)]
    for root in dict.fromkeys(r for _, r in mine):
        n = sum(r == root for _, r in mine)
        notes.append(f"note: {display_path(root)}: {n} earlier {what}(s) of srgan upscale in "
                     f"{display_path(outdir)} left out")
    return [job for job in files if job not in mine]


def plan_jobs(found: Found, out_file: Path | None, outdir: Path, suffix: str, *,
              image_format: str, video_ext: str, overwrite: bool) -> Plan:
    """Source, target and action for every image and video, before anything is computed.
    Every torchrun process makes the same plan and runs its `shard` of it."""
    from srgan.outputs import InputSet
    from srgan.video_checks import has_mark

    plan = Plan(errors=list(found.errors), run_videos=bool(found.videos))
    plan.run_images = bool(found.images or found.errors or not found.videos)
    images = _left_out(found.images, outdir, suffix, "output", None, plan.notes)
    videos = _left_out(found.videos, outdir, suffix, "video output", has_mark, plan.notes)
    seen = InputSet(f for f, _ in images + videos)
    planned: dict[Path, Path] = {}
    plan.images = [_judge(src, out_file or output_path(src, root, outdir, suffix, image_format),
                          planned, seen, overwrite, None) for src, root in images]
    plan.videos = [_judge(src, out_file or video_target(src, root, outdir, suffix, video_ext),
                          planned, seen, overwrite, has_mark) for src, root in videos]
    if plan.run_images and not images and not found.errors:
        plan.errors.append("no input images")
    if plan.run_videos and not videos:
        plan.video_errors.append("no input videos")
    return plan
