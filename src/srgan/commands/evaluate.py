"""`srgan benchmark` and `srgan compare`: thin layers over `srgan.evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from srgan.commands.options import device_option, precision_option

BENCHMARK_EXAMPLES = """
\b
Examples:
  srgan benchmark -m bicubic --data Set5 Set14            # the baseline alone
  srgan benchmark -m srresnet_x4 -m srgan_mse_x4 --data Set5 Set14 BSD100
  srgan benchmark -m srresnet_x4 --data Set14 --niqe      # + NIQE, HR images included
  srgan benchmark -m my.safetensors --data Set5 --ssim paper   # the SRGAN paper's SSIM
  srgan benchmark -m srresnet_x4 --data ~/sets/Set5/HR --lr-dir ~/sets/Set5/LR_bicubic/X4
  srgan benchmark -m srresnet_real_x4 --data DRealSR --niqe   # real camera pairs (HR/, LR/)
  srgan benchmark -m srresnet_real_x4 --data RealSRSet --lr-input   # real LR, no HR: NIQE

\b
A --data (or --lr-dir) that is not an existing folder is looked up by name: under
--data-root, then $SRGAN_DATA_ROOT, then ../shared/data/benchmark, ../shared/data/real and
data/benchmark (where `srgan data download set5 data/benchmark` puts Set5; set14 likewise).
A set folder holding HR/ and LR/ (DRealSR) is scored on its own LR images, matched by name.
Writes scores.csv (per image), results.md (the table) and summary.json (settings, versions,
device, seconds per image) into --output. Unreadable or unusable images are reported on one
line each and skipped; the exit status is 1 only when no image at all could be scored.
"""


def _err(line: str) -> None:
    click.echo(line, err=True)


@click.command(epilog=BENCHMARK_EXAMPLES)
@click.option("-m", "--model", "models", multiple=True,
              help="Shipped model name, .safetensors file, or `bicubic`; repeatable. "
                   "[default: every shipped model] `bicubic` is always included.")
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path),
              help="Folder of HR images, or a set name (Set5, Set14, BSD100...) found under "
                   "the data root; more may follow it.")
@click.argument("more_data", nargs=-1, metavar="[DIR|NAME]...", type=click.Path(path_type=Path))
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where set names are looked up first [then $SRGAN_DATA_ROOT, then "
                   "../shared/data/benchmark, then data/benchmark].")
@click.option("--scale", type=click.IntRange(2, 16), default=4, show_default=True)
@click.option("--crop-border", type=click.IntRange(min=0), default=None,
              help="Pixels shaved off each side before scoring [default: the scale].")
@click.option("--lr-dir", "lr_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Ready-made LR images, one folder per --data folder in the same order, "
                   "matched by file name (baby.png, baby_LR.png, babyx4.png...). "
                   "[default: MATLAB bicubic of the HR]")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmark_results"), show_default=True)
@device_option
@precision_option("fp32", "fp32 keeps tables independent of the GPU's half-precision "
                  "arithmetic.")
@click.option("--tta", is_flag=True, help="x8 self-ensemble (flips/rotations) for the models.")
@click.option("--ssim", type=click.Choice(["wang", "paper"]), default="wang", show_default=True,
              help="wang: the literature's SSIM; paper: the SRGAN paper's (daala) convention.")
@click.option("--lpips/--no-lpips", default=True, show_default=True,
              help="LPIPS column when the `lpips` package and its weights are installed.")
@click.option("--niqe", is_flag=True,
              help="NIQE column (no reference, lower is better) for every method and for the "
                   "HR images themselves.")
@click.option("--lr-input", is_flag=True,
              help="The --data folders hold real low-resolution images with no ground truth "
                   "(RealSRSet, one's own photos): upscale them as they are and score NIQE.")
@click.option("--overwrite", is_flag=True, help="Replace the result files of an earlier run.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def benchmark(models, data, more_data, data_root, scale, crop_border, lr_dirs, out, device,
              precision, tta, ssim, lpips, niqe, lr_input, overwrite, quiet) -> None:
    """PSNR / SSIM of models on folders of HR images, under the SR literature's protocol.

    Each HR image is modcropped to the scale and made 8-bit RGB (grey images replicated);
    the LR is its MATLAB-bicubic downscale (uint8); the scores are Y-PSNR and Y-SSIM with
    SCALE pixels cropped at each side, and RGB PSNR (and NIQE with --niqe). `bicubic` (MATLAB
    bicubic upscaling of the same LR) is the baseline of every table.
    """
    from srgan.evaluate.benchmark import run_benchmark
    from srgan.imageio import display_text
    from srgan.weights import ModelFileError, list_models

    check_result_files(out, overwrite)  # before any scoring
    datasets = [*data, *more_data]
    if not datasets:
        raise click.UsageError("give at least one folder of HR images with --data")
    if lr_dirs and len(lr_dirs) != len(datasets):
        raise click.UsageError(
            f"{len(lr_dirs)} --lr-dir for {len(datasets)} datasets: give one per dataset"
        )
    names = list(models) or list(list_models())
    if lr_input:
        if lr_dirs:
            raise click.UsageError("--lr-input scores the --data images themselves as LR: "
                                   "give no --lr-dir")
        _noref(names, datasets, scale, crop_border, device, precision, tta, data_root, out)
        return
    try:
        result = run_benchmark(
            names, datasets, scale=scale, crop_border=crop_border,
            lr_dirs=list(lr_dirs) or None, device=device, precision=precision, tta=tta,
            ssim=ssim, lpips=lpips, progress=not quiet and sys.stderr.isatty(), log=_err,
            niqe=niqe, data_root=data_root,
        )
    except (ModelFileError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(display_text(exc)) from exc
    _write_tables(result, out, say_skipped=True)


def _noref(names, datasets, scale, crop_border, device, precision, tta, data_root, out) -> None:
    from srgan.evaluate.noref import run_noref
    from srgan.imageio import display_text
    from srgan.weights import ModelFileError

    try:
        result = run_noref(names, datasets, scale=scale, crop_border=crop_border, device=device,
                           precision=precision, tta=tta, log=_err, data_root=data_root)
    except (ModelFileError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(display_text(exc)) from exc
    _write_tables(result, out, say_skipped=False)


def _write_tables(result, out, say_skipped: bool) -> None:
    """Write the tables into `out`, print the Markdown one and say where the files went;
    exit status 1 when no image could be scored."""
    from srgan.imageio import display_path

    if not result.scores:
        _err(f"no image could be scored ({len(result.skipped)} skipped)")
        sys.exit(1)
    paths = result.write(out)
    click.echo(result.to_markdown())
    if say_skipped and result.skipped:
        _err(f"{len(result.skipped)} image(s) skipped (listed in "
             f"{display_path(paths['json'])})")
    _err("wrote " + ", ".join(display_path(paths[k]) for k in ("csv", "markdown", "json")))


COMPARE_EXAMPLES = """
\b
Examples:
  srgan compare -m srresnet_x4 -m srgan_mse_x4 photo.png           # compare_results/photo.png
  srgan compare -m srgan_mse_x4 photo.png -o fig.png --box 120,80,64,64
  srgan compare -m srresnet_x4 -m srgan_mse_x4 --grid photos/ -o grid.png
  srgan compare -m srgan_mse_x4 --lr-input small.jpg              # no HR: no scores
  srgan compare -m srresnet_x4 --grid Set14 -o set14.png          # a set by name

\b
A folder name that does not exist here is looked up like `srgan benchmark --data`: under
$SRGAN_DATA_ROOT, then ../shared/data/benchmark, then data/benchmark.
"""


@click.command(epilog=COMPARE_EXAMPLES)
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--model", "models", multiple=True,
              help="Shipped model name or .safetensors file; repeatable. "
                   "[default: every shipped model] `bicubic` is always a column.")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=None,
              help="Folder for one PNG per image [default: compare_results/], or a .png file "
                   "(one image, or --grid).")
@click.option("--scale", type=click.IntRange(2, 16), default=4, show_default=True)
@click.option("--box", default=None, metavar="X,Y,W,H",
              help="Inset region in HR pixels [default: where the methods differ most].")
@click.option("--box-size", type=click.IntRange(min=4), default=None,
              help="Side of the automatic inset region [default: a quarter of the image].")
@click.option("--panel-width", type=click.IntRange(64, 2048), default=None,
              help="Width of each panel [default: 256, 192 in --grid].")
@click.option("--grid", is_flag=True, help="All images in one figure: insets only.")
@click.option("--lr-input", is_flag=True,
              help="The images are LR inputs (no HR column, no scores).")
@device_option
@precision_option("fp32", "fp32: figures independent of the GPU's half precision.")
@click.option("--tta", is_flag=True, help="x8 self-ensemble for the models.")
@click.option("--overwrite", is_flag=True,
              help="Replace existing figures (never the input images themselves).")
def compare(images, models, out, scale, box, box_size, panel_width, grid, lr_input, device,
            precision, tta, overwrite) -> None:
    """Figures: LR (nearest) | bicubic | each model | HR, a zoomed inset, scores under each.

    IMAGES are HR images (or folders of them): each is modcropped, downscaled x SCALE with
    MATLAB bicubic, and super-resolved by every model. PSNR / SSIM are on Y, as `srgan
    benchmark` scores them.
    """
    from srgan.evaluate.compare import (
        build_comparison,
        parse_box,
        render_grid,
        render_row,
        save_png,
    )
    from srgan.evaluate.methods import error_reason, load_methods, resolve_dataset
    from srgan.imageio import ImageReadError, display_path, display_text, find_images
    from srgan.weights import ModelFileError, list_models

    try:
        box_t = parse_box(box) if box else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--box") from exc
    files: list[Path] = []
    for item in images:
        if not item.exists():
            try:  # a set name (Set14), as `srgan benchmark --data` takes it
                item = resolve_dataset(item, what="input")
            except FileNotFoundError as exc:
                raise click.BadParameter(display_text(exc), param_hint="IMAGES") from exc
        files += find_images([item], recursive=False) if item.is_dir() else [item]
    if not files:
        raise click.UsageError("no images found")
    to_file = out is not None and out.suffix.lower() == ".png"
    if to_file and not grid and len(files) > 1:
        raise click.UsageError(f"{len(files)} images need a folder for --output, or --grid")
    folder = (out if out is not None and not to_file else Path("compare_results"))
    targets = figure_targets(files, out if to_file else None, folder, grid)
    check_figure_targets(targets, files, overwrite)  # before any model runs
    names = list(models) or list(list_models())
    try:
        methods = load_methods(names, scale=scale, device=device, precision=precision, tta=tta)
    except (ModelFileError, ValueError) as exc:
        raise click.ClickException(display_text(exc)) from exc
    width = panel_width or (192 if grid else 256)

    comps, written = [], []
    for f in files:
        try:
            comp = build_comparison(f, methods, scale, box_t, box_size, lr_input)
        except (ImageReadError, ValueError, OSError) as exc:
            _err(f"skipped {display_path(f)}: {display_text(error_reason(exc, f))}")
            continue
        if grid:
            comps.append(comp)
            continue
        written.append(save_png(render_row(comp, width).image, targets[f], overwrite=overwrite))
    if grid and comps:
        written.append(save_png(render_grid(comps, width).image, targets[None],
                                overwrite=overwrite))
    if not written:
        _err("no figure written")
        sys.exit(1)
    for p in written:
        click.echo(display_path(p))


def check_result_files(out: Path, overwrite: bool) -> None:
    """Refuse now, not after the scoring, to replace an earlier run's results (or any file
    of those names) unless --overwrite."""
    from srgan.imageio import display_path, display_text
    from srgan.outputs import InputSet, OutputError, check_target

    problems, in_the_way = [], []
    for name in ("scores.csv", "results.md", "summary.json"):
        target = out / name
        try:
            check_target(target, InputSet([]), overwrite)
        except OutputError as exc:
            if overwrite or not (target.exists() or target.is_symlink()) or target.is_dir():
                problems.append(str(exc))
            else:
                in_the_way.append(name)
    if in_the_way and not problems:
        raise click.ClickException(display_text(
            f"not run: {display_path(out)} already holds the results of an earlier run "
            f"({', '.join(in_the_way)}), which are kept; give another folder with -o/--output, "
            "or --overwrite to replace them"))
    problems += [f"output {out / n} exists (use --overwrite to replace it)" for n in in_the_way]
    if problems:
        raise click.ClickException(display_text("not run:\n  " + "\n  ".join(problems)))


def figure_targets(files: list[Path], out_file: Path | None, folder: Path, grid: bool
                   ) -> dict[Path | None, Path]:
    """Where each image's figure goes (key None: the grid figure)."""
    if grid:
        return {None: out_file or folder / "grid.png"}
    return {f: out_file or folder / f"{f.stem}.png" for f in files}


def check_figure_targets(targets: dict[Path | None, Path], files: list[Path],
                         overwrite: bool) -> None:
    """Refuse, before computing, figures that would replace an input image (always), an
    existing file (unless --overwrite), or each other."""
    from srgan.imageio import display_text
    from srgan.outputs import InputSet, OutputError, check_target

    inputs, seen, problems = InputSet(files), {}, []
    for src, target in targets.items():
        try:
            check_target(target, inputs, overwrite)
        except OutputError as exc:
            problems.append(str(exc))
        if target in seen:
            problems.append(f"{target}: figure of both {seen[target]} and {src}")
        seen[target] = src
    if problems:
        raise click.ClickException(display_text("no figure written:\n  " + "\n  ".join(problems)))
