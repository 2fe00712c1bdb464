"""`srgan export`: a training run or checkpoint -> a model file for `srgan upscale -m`."""

from __future__ import annotations

from pathlib import Path

import click


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
def export(source: Path, output: Path, fmt: str, ema: bool, best: bool, fp16: bool) -> None:
    """Export the generator of SOURCE (a run folder or a checkpoint .pt) to a model file.

    \b
      srgan export runs/srresnet_x4 -o my_srresnet.safetensors --ema
      srgan upscale -m my_srresnet.safetensors photo.png
      srgan export srresnet_x4 -o srresnet_x4.onnx --format onnx
    """
    import torch

    if fmt != "safetensors":
        from srgan.export import ExportError as ModelExportError
        from srgan.export import export_model, load_source

        if fp16:
            raise click.BadParameter("only for --format safetensors", param_hint="--fp16")
        try:
            path = export_model(load_source(source, ema=ema, best=best), output, fmt)
        except ModelExportError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {path}")
        return

    from srgan.train.export import ExportError, export_generator

    try:
        path = export_generator(source, output, ema=ema, best=best,
                                dtype=torch.float16 if fp16 else torch.float32)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}")
