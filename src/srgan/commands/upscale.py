"""`srgan upscale`: files and folders in, upscaled files out; one bad file never stops the rest.

Check the options, find the inputs (`srgan.commands.plan.discover`), load the model, plan
every job (`plan_jobs`: source, target, action), then run the image jobs (here) and the video
jobs (`srgan.commands.video`), and sum up (`srgan.commands.summary`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from srgan.commands.options import (
    FiniteFloatRange,
    device_option,
    precision_option,
    tile_option,
)
from srgan.commands.plan import Job, check_output, default_suffix, discover, plan_jobs, shard
from srgan.commands.summary import Tally, failure_line, report, take_planned
from srgan.commands.video import check_codec, container_extension, run_videos, video_options
from srgan.packaged import DEFAULT_MODEL

EXAMPLES = """
\b
Examples:
  srgan upscale photo.jpg -o out/                 # out/photo_x4.jpg
  srgan upscale photo.jpg -o big.png              # one file: that name
  srgan upscale holiday/ -o big/ --format png        # every image in the folder, as PNG
  srgan upscale scan.png -o out/ --outscale 2     # x4 model, then bicubic to x2
  srgan upscale in.png -o out/ -m my.safetensors --device cuda --precision fp16
  srgan upscale in.png -o out/ --tta              # x8 self-ensemble: slower, a bit sharper
  torchrun --nproc_per_node 4 -m srgan upscale frames/ -o up/   # one GPU per process
"""


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
@click.option("--format", "image_format", type=click.Choice(["auto", "png", "jpg", "webp"]),
              default="auto",
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
    image_format: str,
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
    check_options(outscale, tile_pad, suffix)
    found = discover(inputs)
    out_file, outdir = check_output(outdir, inputs, found, image_format)
    opts = check_codec(video["codec"], video["crf"], video["lossless"]) if found.videos else None
    rank, world, local_rank = distributed_rank()
    upscaler = load_upscaler(model, device, local_rank, world, precision=precision, tile=tile,
                             tile_pad=tile_pad, backend=backend, compile_=compile_,
                             denoise=denoise)
    if suffix is None:
        suffix = default_suffix(upscaler.scale, outscale, model, denoise)
    plan = plan_jobs(found, out_file, outdir, suffix, image_format=image_format,
                     video_ext=container_extension(opts) if opts else ".mp4",
                     overwrite=overwrite)
    for note in plan.notes:
        tqdm.write(note, file=sys.stderr)
    tallies = []
    if plan.run_images:  # images and videos in one run, each with its own tally
        tallies.append(run_images(
            plan.images, plan.errors if rank == 0 else [], outdir, upscaler,
            outscale=outscale, tta=tta, overwrite=overwrite, quiet=quiet, rank=rank,
            world=world))
    if plan.run_videos and opts is not None:
        from srgan.video import Window

        tallies.append(run_videos(
            shard(plan.videos, rank, world), plan.video_errors if rank == 0 else [], outdir,
            upscaler, opts=opts, window=Window(video["start"], video["duration"]),
            outscale=outscale, tta=tta, overwrite=overwrite, quiet=quiet))
    report(tallies, rank, world)


def check_options(outscale: float | None, tile_pad: int | None, suffix: str | None) -> None:
    """Usage errors for option values click's types cannot judge alone."""
    from srgan.outputs import OutputError, check_name_part

    if outscale is not None and not 0 < outscale <= 64:
        raise click.BadParameter("must be in (0, 64]", param_hint="--outscale")
    if tile_pad is not None and tile_pad < 0:
        raise click.BadParameter(f"must be 0 or more, got {tile_pad}", param_hint="--tile-pad")
    if suffix is not None:
        try:
            check_name_part(suffix, "--suffix")
        except OutputError as exc:
            raise click.BadParameter(str(exc), param_hint="--suffix") from None


def load_upscaler(model: str, device: str, local_rank: int, world: int, *, precision: str,
                  tile: int | None, tile_pad: int | None, backend: str, compile_: bool,
                  denoise: float | None):
    """The model on its device (each torchrun process on its own GPU), or a one-line error."""
    from srgan.inference import DEFAULT_TILE_PAD, Upscaler
    from srgan.weights import ModelFileError

    if world > 1:
        from srgan.device import DeviceError, pick_device

        try:
            device = str(pick_device(device, local_rank, mps=False))
        except DeviceError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        return Upscaler.from_pretrained(
            model, device=device, precision=precision, tile=tile,
            tile_pad=DEFAULT_TILE_PAD if tile_pad is None else tile_pad,
            backend=backend, compile=compile_, denoise=denoise,
        )
    except (ModelFileError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


def run_images(jobs: list[Job], errors: list[str], outdir: Path, upscaler, *,
               outscale: float | None, tta: bool, overwrite: bool, quiet: bool, rank: int,
               world: int) -> Tally:
    """Upscale this torchrun process's share of the planned images; `errors` are the
    inputs that could not be used."""
    from srgan.heap import keep_freed_memory
    from srgan.outputs import OutputError, prepare_folder

    tally = Tally("images", outdir=outdir)
    if jobs or rank == 0:
        try:  # before any computing: a folder that cannot be made fails now, not at the end
            prepare_folder(outdir)
        except OutputError as exc:
            raise click.ClickException(str(exc)) from None
    jobs = shard(jobs, rank, world)
    for line in errors:
        tally.fail(line)
    bar = tqdm(total=len(jobs), unit="img", disable=quiet or not jobs, desc="upscale",
               position=0, leave=True, file=sys.stderr)
    started = time.perf_counter()
    todo = take_planned(jobs, tally, bar.update)
    if upscaler.device.type == "cpu" and todo:
        keep_freed_memory()  # activations reuse pages instead of faulting in new ones
    written = upscale_files(todo, upscaler, tally, bar, outscale=outscale, tta=tta,
                            overwrite=overwrite, quiet=quiet)
    bar.close()
    tally.seconds = time.perf_counter() - started
    tally.done = len(written)
    tally.written = written if len(written) == 1 and len(todo) == 1 else []
    if upscaler.fp32_fallbacks:
        tally.extra = f" ({upscaler.fp32_fallbacks} tiles redone in fp32)"
    return tally


def upscale_files(todo: list[Job], upscaler, tally: Tally, bar: tqdm, *,
                  outscale: float | None, tta: bool, overwrite: bool,
                  quiet: bool) -> list[Path]:
    """Read, upscale and write each job's image; the next file is decoded and the previous
    one encoded while this one computes. The targets written; failures go to `tally`."""
    from srgan.commands.pipeline import io_depth, overlapped
    from srgan.imageio import (
        ImageReadError,
        check_writable_size,
        display_path,
        read_quantized,
        write_image,
    )
    from srgan.inference import output_size

    def compute(job: Job, data):
        for w in data.warnings:
            tqdm.write(f"warning: {display_path(job.source)}: {w}", file=sys.stderr)
        oh, ow = output_size(data.height, data.width,
                             upscaler.scale if outscale is None else outscale)
        check_writable_size(job.target, ow, oh)
        n_tiles = upscaler.tiles_for(data.height, data.width, data.pixels.shape[2])
        with tqdm(total=n_tiles, unit="tile", leave=False, desc=job.source.name,
                  disable=quiet or n_tiles < 2, position=1, file=sys.stderr) as tiles:
            if outscale is None:  # integers in, tiles rounded straight into integers out
                return upscaler.upscale(data, tta=tta, progress=tiles.update)
            return upscaler.upscale(data.to_image_data(), outscale, tta=tta,
                                    progress=tiles.update)

    def save(job: Job, result) -> None:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        write_image(result, job.target, overwrite=overwrite)

    written = []
    for job, exc in overlapped(todo, lambda job: read_quantized(job.source), compute, save,
                               depth=io_depth(upscaler.device)):
        bar.update(1)
        if exc is None:
            written.append(job.target)
        elif isinstance(exc, ImageReadError | OSError | ValueError):
            tally.fail(failure_line(job.source, exc))
        elif isinstance(exc, MemoryError):
            tally.fail(f"{display_path(job.source)}: out of memory (try a smaller --tile)")
        else:
            raise exc
    return written
