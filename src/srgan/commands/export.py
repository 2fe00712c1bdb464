"""`srgan export`: a training run or checkpoint -> a model file for `srgan upscale -m`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output model file (NAME.safetensors).")
@click.option("--ema", is_flag=True, help="Export the EMA weights (runs with train.ema > 0).")
@click.option("--best", is_flag=True,
              help="From a run folder: the best validated checkpoint instead of the newest.")
@click.option("--fp16", is_flag=True, help="Store the weights as float16 (half the size).")
def export(source: Path, output: Path, ema: bool, best: bool, fp16: bool) -> None:
    """Export the generator of SOURCE (a run folder or a checkpoint .pt) to a model file.

    \b
      srgan export runs/srresnet_x4 -o my_srresnet.safetensors --ema
      srgan upscale -m my_srresnet.safetensors photo.png
    """
    import torch

    from srgan.train.export import ExportError, export_generator

    try:
        path = export_generator(source, output, ema=ema, best=best,
                                dtype=torch.float16 if fp16 else torch.float32)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}")
