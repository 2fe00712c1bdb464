"""`srgan export`: a training run or checkpoint -> a model file for `srgan upscale -m`."""

from __future__ import annotations

from pathlib import Path

import click

from srgan.outputs import InputSet, OutputError, check_target, is_within


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output model file (NAME.safetensors, NAME.onnx, NAME.pt).")
@click.option("--format", "fmt", type=click.Choice(["safetensors", "onnx", "torchscript"]),
              default="safetensors", show_default=True,
              help="onnx / torchscript: BatchNorm folded, dynamic size, [0,1] RGB in and out; "
                   "SOURCE may also be a shipped model or a .safetensors file.")
@click.option("--ema", is_flag=True, help="Export the EMA weights (runs with train.ema > 0).")
@click.option("--best", is_flag=True,
              help="From a run folder: the best validated checkpoint instead of the newest.")
@click.option("--fp16", is_flag=True, help="Store the weights as float16 (half the size).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing output file (never the source or a checkpoint).")
def export(source: Path, output: Path, fmt: str, ema: bool, best: bool, fp16: bool,
           overwrite: bool) -> None:
    """Export the generator of SOURCE (a run folder or a checkpoint .pt) to a model file.

    \b
      srgan export runs/srresnet_x4 -o my_srresnet.safetensors --ema
      srgan upscale -m my_srresnet.safetensors photo.png -o out/
      srgan export srresnet_x4 -o srresnet_x4.onnx --format onnx
    """
    import torch

    from srgan.export import ExportError, export_model
    from srgan.train.export import export_generator, load_source

    try:
        check_export_target(source, output, overwrite)
    except OutputError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt != "safetensors" and fp16:
        raise click.BadParameter("only for --format safetensors", param_hint="--fp16")
    try:
        if fmt == "safetensors":
            path = export_generator(source, output, ema=ema, best=best,
                                    dtype=torch.float16 if fp16 else torch.float32)
        else:
            path = export_model(load_source(source, ema=ema, best=best), output, fmt,
                                overwrite=overwrite)
    except ExportError as exc:
        raise click.ClickException(_readable(exc, source)) from None
    click.echo(f"wrote {path}")


def check_export_target(source: Path, output: Path, overwrite: bool) -> None:
    """Before any loading: the output must not be the source, nor anything in a run's
    checkpoints folder (replacing the newest checkpoint loses the training after the one
    `--resume` falls back to), nor a checkpoint anywhere (known by its content), and an
    existing file needs --overwrite."""
    candidates = [source]
    if source.is_dir():
        checkpoints = source / "checkpoints"
        if is_within(output, checkpoints) or (output.suffix == ".pt"
                                              and is_within(output, source)):
            raise OutputError(f"output {output} is inside the run's checkpoints; an export never "
                              "replaces a checkpoint (write it elsewhere, e.g. "
                              f"{source / 'exported.safetensors'})")
        candidates += sorted(checkpoints.glob("*.pt"))
    check_target(output, InputSet(candidates), overwrite)  # and never over a checkpoint


def _readable(exc: Exception, source: Path) -> str:
    """An export error; a pickle that is not an srgan checkpoint gets the safe way to convert
    it instead of torch's page-long `weights_only` message."""
    from srgan.weights import PICKLE_SUFFIXES, state_dict_recipe

    text = str(exc)
    foreign = "unreadable checkpoint" in text or "not an srgan training checkpoint" in text
    if source.is_file() and source.suffix.lower() in PICKLE_SUFFIXES and foreign:
        first = text.splitlines()[0]
        why = first if len(first) <= 160 else first[:157] + "..."
        return f"{why}\nIt is not an srgan training checkpoint. {state_dict_recipe(source)}"
    return text
