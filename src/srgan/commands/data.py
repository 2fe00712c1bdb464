"""`srgan data`: get training data and the standard benchmark sets."""

from __future__ import annotations

import os
from pathlib import Path

import click

from srgan.datasets.div2k import BASE_URL_ENV, DEFAULT_BASE_URL, DIV2K_ARCHIVES

DATASETS = ("div2k", "set5", "set14")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Download training data and the standard benchmark sets."""


def _dataset(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """div2k, set5 or set14, in any case; another standard benchmark set's name gets where it
    comes from and how to point at one's own copy, instead of a bare 'invalid choice'."""
    if value.lower() in DATASETS:
        return value.lower()
    from srgan.evaluate.methods import STANDARD_SETS

    if value.lower() in STANDARD_SETS:
        raise click.BadParameter(
            f"{STANDARD_SETS[value.lower()]} is not downloaded by srgan (it downloads "
            f"{', '.join(DATASETS)}): get its HR images from the authors or a "
            f"super-resolution toolbox and give the folder to srgan benchmark as --data "
            f"path/to/{value}, or the folder that holds it as --data-root DIR (see docs/faq.md)")
    raise click.BadParameter(f"{value!r}: srgan downloads {', '.join(DATASETS)}")


@data.command("download")
@click.argument("dataset", metavar="{div2k,set5,set14}", callback=_dataset)
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", default=None,
              help="Where the archives are: a mirror with the same file names [default: "
                   f"div2k: ${BASE_URL_ENV}, else {DEFAULT_BASE_URL}; set5, set14: the "
                   "Hugging Face dataset repositories eugenesiow/Set5 and eugenesiow/Set14].")
@click.option("--parts", default=None,
              help="div2k only: comma-separated parts to get [default: "
                   f"{','.join(DIV2K_ARCHIVES)}].")
@click.option("--delete-archives", is_flag=True, help="Delete each archive once extracted.")
def download_command(dataset: str, target: Path, base_url: str | None, parts: str | None,
                     delete_archives: bool) -> None:
    """Download DATASET into TARGET: resumable, checked, extracted.

    div2k's archives are checked by size and SHA-256; set5 and set14 image by image, against
    the images srgan's tables were measured on, and written as TARGET/Set5 (TARGET/Set14),
    where --data-root TARGET finds them; data/benchmark is looked in without it.

    \b
      srgan data download div2k data/DIV2K
      srgan train srresnet_x4 --set 'data.train=[data/DIV2K/DIV2K_train_HR]'
      srgan data download set5 data/benchmark      # data/benchmark: found by name
      srgan benchmark -m srresnet_x4 --data Set5
    """
    from srgan.datasets.download import DownloadError

    try:
        if dataset == "div2k":
            _div2k(target, base_url, parts, delete_archives)
            return
        if parts is not None:
            raise click.UsageError(f"--parts is for div2k; {dataset} is one archive")
        from srgan.datasets.standard_sets import download_standard_set

        folder = download_standard_set(dataset, target, base_url=base_url,
                                       keep_archives=not delete_archives, log=_err)
    except DownloadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{folder.name}\t{folder}")
    click.echo(f"benchmark with: srgan benchmark --data-root {target} --data {folder.name} "
               f"(validate training on it: --set data.val={folder})", err=True)


def _err(line: str) -> None:
    click.echo(line, err=True)


def _div2k(target: Path, base_url: str | None, parts: str | None,
           delete_archives: bool) -> None:
    from srgan.datasets.div2k import download_div2k

    chosen = list(DIV2K_ARCHIVES) if parts is None else [
        p.strip() for p in parts.split(",") if p.strip()]
    folders = download_div2k(
        target, base_url=base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        parts=chosen, keep_archives=not delete_archives, log=_err)
    for name, folder in folders.items():
        click.echo(f"{name}\t{folder}")
    if "train_hr" in folders:
        val = f" --set data.val={folders['valid_hr']}" if "valid_hr" in folders else ""
        click.echo("train with: srgan train srresnet_x4 --set "
                   f"'data.train=[{folders['train_hr']}]'{val}", err=True)
