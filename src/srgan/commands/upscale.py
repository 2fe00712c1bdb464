"""`srgan upscale`: files and folders in, upscaled files out; one bad file never stops the rest."""

from __future__ import annotations

import os
import re
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from tqdm import tqdm

from srgan.commands.options import (
    FiniteFloatRange,
    device_option,
    precision_option,
    tile_option,
)
from srgan.commands.video import video_options
from srgan.packaged import DEFAULT_MODEL

EXAMPLES = """
\b
Examples:
  srgan upscale photo.jpg -o out/                 # out/photo_x4.jpg
  srgan upscale photo.jpg -o big.png              # one file: that name
  srgan upscale holiday/ -o big/ --ext png        # every image in the folder, as PNG
  srgan upscale scan.png -o out/ --outscale 2     # x4 model, then bicubic to x2
  srgan upscale in.png -o out/ -m my.safetensors --device cuda --precision fp16
  srgan upscale in.png -o out/ --tta              # x8 self-ensemble: slower, a bit sharper
  torchrun --nproc_per_node 4 -m srgan upscale frames/ -o up/   # one GPU per process
"""

OUTPUT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
# Input formats we also write back as they came; anything else (GIF, TIFF, ...) becomes PNG.
KEEP_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
DEFAULT_SUFFIX = re.compile(r"_x\d+(\.\d+)?$")  # what default_suffix() makes


def output_path(src: Path, root: Path | None, outdir: Path, suffix: str, ext: str) -> Path:
    """Where `src` goes: the same relative place under `outdir`, with `suffix` and `ext`."""
    rel = src.relative_to(root) if root is not None else Path(src.name)
    if ext == "auto":
        new_ext = src.suffix.lower() if src.suffix.lower() in KEEP_EXTENSIONS else ".png"
    else:
        new_ext = OUTPUT_EXTENSIONS[ext]
    return outdir / rel.parent / f"{rel.stem}{suffix}{new_ext}"


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


def _stat_error(item: Path, exc: OSError) -> str:
    from srgan.imageio import display_path

    if isinstance(exc, FileNotFoundError):
        return f"{display_path(item)}: no such file or folder"
    return f"{display_path(item)}: {exc.strerror or exc}"


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


def collect_inputs(
    inputs: tuple[Path, ...], outdir: Path | None = None, suffix: str = "",
    video_roots: set[Path] | frozenset[Path] = frozenset(),
) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """(file, folder it was found in or None) for every input, and errors for inputs that
    cannot be used (missing, name too long, ...): those never stop the others. With
    `outdir`, files in input folders that are our own earlier outputs are left out. A folder
    in `video_roots` holds videos, so having no images is no error there."""
    from srgan.imageio import IMAGE_EXTENSIONS, display_path, find_images

    jobs: list[tuple[Path, Path | None]] = []
    errors = []
    for item in inputs:
        try:
            st = os.stat(item)
        except OSError as exc:  # ENOENT, ENAMETOOLONG, EACCES, ELOOP ...
            errors.append(_stat_error(item, exc))
            continue
        if not stat.S_ISDIR(st.st_mode):
            jobs.append((item, None))
            continue
        found = find_images([item])
        mine = [f for f in found if outdir is not None and is_own_output(f, item, outdir, suffix)]
        if mine:
            tqdm.write(f"note: {display_path(item)}: {len(mine)} earlier output(s) of "
                       f"srgan upscale in {display_path(outdir)} left out", file=sys.stderr)
        jobs += [(f, item) for f in found if f not in mine]
        if not found and item not in video_roots:
            exts = " ".join(sorted(IMAGE_EXTENSIONS))
            errors.append(f"{display_path(item)}: no images in this folder (looked for {exts})")
    return jobs, errors


def shard(items: list, rank: int, world: int) -> list:
    """Round-robin share of `items` for one torchrun process: disjoint, together complete."""
    return items[rank::world]


def distributed_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise."""
    from srgan.device import torchrun_env

    env = torchrun_env()
    return env.rank, env.world_size, env.local_rank


@click.command(epilog=EXAMPLES)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if needed); or, for one input file, an output "
                   "file name such as big.png.")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="Shipped model name (see `srgan models`) or a .safetensors file.")
@click.option("--denoise", type=FiniteFloatRange(0, 1), default=None, metavar="STRENGTH",
              help="0 to 1: blend srresnet_x4 (0: keeps fine texture, and the noise) with "
                   "srresnet_real_x4 (1: removes noise, JPEG blocks and blur); 0.5 is between.")
@click.option("--outscale", type=float, default=None,
              help="Final scale; the model's x4 output is resized (MATLAB bicubic) to it.")
@tile_option
@click.option("--tile-pad", type=int, default=None,
              help="Context pixels around each tile [default: 24].")
@device_option
@precision_option()
@click.option("--tta", is_flag=True, help="x8 flip/rotate self-ensemble (8x slower).")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default="torch",
              show_default=True, help="onnxruntime: CPU only, needs srgan[onnx].")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the model (GPUs; pays off over many images of one size).")
@click.option("--ext", type=click.Choice(["auto", "png", "jpg", "webp"]), default="auto",
              show_default=True, help="Output format; auto keeps the input's where it can.")
@click.option("--suffix", default=None,
              help="Added to output file names [default: _x4, or _x2 for --outscale 2].")
@click.option("--overwrite", is_flag=True,
              help="Replace existing output files (never the inputs themselves).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@video_options
def upscale(
    inputs: tuple[Path, ...],
    outdir: Path,
    model: str,
    denoise: float | None,
    outscale: float | None,
    tile: int | None,
    tile_pad: int | None,
    device: str,
    precision: str,
    tta: bool,
    backend: str,
    compile_: bool,
    ext: str,
    suffix: str | None,
    overwrite: bool,
    quiet: bool,
    **video,
) -> None:
    """Upscale images and videos (files or folders) with a super-resolution model.

    Each output is written to a temporary file and renamed, so an interrupted run never
    leaves a half-written file. Existing outputs are kept unless --overwrite, an input is
    never replaced, and earlier outputs found in an input folder are not upscaled again.
    A file that cannot be read or written is reported and skipped; the exit status is 1 if
    any file failed. Images and videos may be mixed (in one folder or on one command
    line): each kind keeps its own output rules and gets its own summary line.
    """
    from srgan.imageio import WRITE_EXTENSIONS, display_path
    from srgan.inference import DEFAULT_TILE_PAD, Upscaler
    from srgan.outputs import OutputError, check_name_part
    from srgan.weights import ModelFileError

    rank, world, local_rank = distributed_rank()
    if world > 1:  # each torchrun process its own GPU
        from srgan.device import DeviceError, pick_device

        try:
            device = str(pick_device(device, local_rank, mps=False))
        except DeviceError as exc:
            raise click.ClickException(str(exc)) from None
    if outscale is not None and not 0 < outscale <= 64:
        raise click.BadParameter("must be in (0, 64]", param_hint="--outscale")
    if tile_pad is not None and tile_pad < 0:
        raise click.BadParameter(f"must be 0 or more, got {tile_pad}", param_hint="--tile-pad")
    if suffix is not None:
        try:
            check_name_part(suffix, "--suffix")
        except OutputError as exc:
            raise click.BadParameter(str(exc), param_hint="--suffix") from None
    # -o big.png with one input file: that file; otherwise -o is a folder
    out_file = None
    if outdir.suffix.lower() in WRITE_EXTENSIONS and not outdir.is_dir():
        files = [i for i in inputs if not os.path.isdir(i)]
        if len(inputs) != 1 or len(files) != 1:
            raise click.UsageError(f"-o {display_path(outdir)} names a file, but the inputs "
                                   "may be several images; give an output folder")
        if ext != "auto" and OUTPUT_EXTENSIONS[ext] != outdir.suffix.lower():
            raise click.UsageError(f"-o {display_path(outdir)} does not end in .{ext}")
        out_file, outdir = outdir, outdir.parent
    try:
        upscaler = Upscaler.from_pretrained(
            model, device=device, precision=precision, tile=tile,
            tile_pad=DEFAULT_TILE_PAD if tile_pad is None else tile_pad,
            backend=backend, compile=compile_, denoise=denoise,
        )
    except (ModelFileError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    if suffix is None:
        suffix = default_suffix(upscaler.scale, outscale, model, denoise)
    from srgan.commands.video import find_videos, upscale_videos

    # images and videos in one run, each with its own output rules and its own tally
    videos = find_videos(inputs)
    video_files = {v for v, root in videos if root is None}
    image_inputs = tuple(i for i in inputs if i not in video_files)
    video_roots = {root for _, root in videos if root is not None}
    jobs, errors = collect_inputs(image_inputs, outdir, suffix, video_roots)
    tallies = []
    if jobs or errors or not videos:
        tallies.append(upscale_images(
            jobs, errors, out_file, outdir, upscaler, suffix, ext=ext,
            outscale=outscale, tta=tta, overwrite=overwrite, quiet=quiet, rank=rank,
            world=world))
    if videos:
        tallies.append(upscale_videos(
            inputs, videos, out_file or outdir, upscaler, suffix, outscale=outscale, tta=tta,
            overwrite=overwrite, quiet=quiet, **video))
    report(tallies, rank, world)


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


def plan_images(jobs: list[tuple[Path, Path | None]], out_file: Path | None, outdir: Path,
                suffix: str, ext: str, overwrite: bool, inputs_seen, tally: Tally,
                bar: tqdm) -> list[tuple[Path, Path]]:
    """(input, output) for every image to compute; clashes and existing outputs are counted
    in `tally` (failed or skipped) before anything is computed."""
    from srgan.imageio import display_path, display_text
    from srgan.outputs import OutputError, check_target

    planned: dict[Path, Path] = {}
    todo: list[tuple[Path, Path]] = []
    for src, root in jobs:
        dst = out_file or output_path(src, root, outdir, suffix, ext)
        problem = None
        if dst in planned:
            problem = f"{src}: output {dst} would also be written by {planned[dst]}; skipped"
        else:
            planned[dst] = src
            try:
                check_target(dst, inputs_seen, overwrite=True)
            except OutputError as exc:
                problem = f"{display_path(src)}: {display_text(exc)}"
            if problem is None and overwrite:
                problem = unproven_target(dst, src)
        if problem is not None:
            tally.failures.append(problem)
            tqdm.write(f"error: {problem}", file=sys.stderr)
            bar.update(1)
            continue
        if (dst.exists() or dst.is_symlink()) and not overwrite:
            tally.skipped += 1
            tqdm.write(f"skip: {display_path(dst)} exists (use --overwrite to replace it)",
                       file=sys.stderr)
            bar.update(1)
            continue
        todo.append((src, dst))
    return todo


def upscale_images(
    jobs: list[tuple[Path, Path | None]], errors: list[str], out_file: Path | None,
    outdir: Path, upscaler, suffix: str, *, ext: str, outscale: float | None, tta: bool,
    overwrite: bool, quiet: bool, rank: int, world: int,
) -> Tally:
    """Upscale the images collect_inputs found (this process's share); `errors` are the
    inputs it could not use."""
    from srgan.commands.pipeline import io_depth, overlapped
    from srgan.heap import keep_freed_memory
    from srgan.imageio import (
        ImageReadError,
        check_writable_size,
        display_path,
        read_quantized,
        write_image,
    )
    from srgan.inference import output_size
    from srgan.outputs import InputSet, OutputError, prepare_folder

    tally = Tally("images", outdir=outdir)
    if not jobs and not errors:
        errors.append("no input images")
    if jobs or rank == 0:
        try:  # before any computing: a folder that cannot be made fails now, not at the end
            prepare_folder(outdir)
        except OutputError as exc:
            raise click.ClickException(str(exc)) from None
    inputs_seen = InputSet(f for f, _ in jobs)
    jobs = shard(jobs, rank, world)
    tally.failures = list(errors) if rank == 0 else []
    for line in tally.failures:
        click.echo(f"error: {line}", err=True)
    bar = tqdm(total=len(jobs), unit="img", disable=quiet or not jobs, desc="upscale",
               position=0, leave=True, file=sys.stderr)
    started = time.perf_counter()
    todo = plan_images(jobs, out_file, outdir, suffix, ext, overwrite, inputs_seen, tally, bar)
    if upscaler.device.type == "cpu" and todo:
        keep_freed_memory()  # activations reuse pages instead of faulting in new ones

    def compute(job: tuple[Path, Path], data):
        src = job[0]
        for w in data.warnings:
            tqdm.write(f"warning: {display_path(src)}: {w}", file=sys.stderr)
        oh, ow = output_size(data.height, data.width,
                             upscaler.scale if outscale is None else outscale)
        check_writable_size(job[1], ow, oh)
        n_tiles = upscaler.tiles_for(data.height, data.width, data.pixels.shape[2])
        with tqdm(total=n_tiles, unit="tile", leave=False, desc=src.name,
                  disable=quiet or n_tiles < 2, position=1, file=sys.stderr) as tiles:
            if outscale is None:  # integers in, tiles rounded straight into integers out
                return upscaler.upscale_quantized(data, tta, progress=tiles.update)
            return upscaler.upscale_image(data.to_image_data(), outscale, tta,
                                          progress=tiles.update)

    def save(job: tuple[Path, Path], result) -> None:
        job[1].parent.mkdir(parents=True, exist_ok=True)
        write_image(result, job[1], overwrite=overwrite)

    # the next file is decoded and the previous one encoded while this one computes
    written = []
    for (src, dst), exc in overlapped(todo, lambda job: read_quantized(job[0]), compute, save,
                                      depth=io_depth(upscaler.device)):
        bar.update(1)
        if exc is None:
            written.append(dst)
            continue
        if isinstance(exc, ImageReadError | OSError | ValueError):
            msg = str(exc) if display_path(src) in str(exc) else f"{display_path(src)}: {exc}"
        elif isinstance(exc, MemoryError):
            msg = f"{src}: out of memory (try a smaller --tile)"
        else:
            raise exc
        tally.failures.append(msg)
        tqdm.write(f"error: {msg}", file=sys.stderr)
    bar.close()
    tally.seconds = time.perf_counter() - started
    tally.done = len(written)
    tally.written = written if len(written) == 1 and len(todo) == 1 else []
    if upscaler.fp32_fallbacks:
        tally.extra = f" ({upscaler.fp32_fallbacks} tiles redone in fp32)"
    return tally
