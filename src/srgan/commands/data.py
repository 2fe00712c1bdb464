"""`srgan data`: get training data."""

from __future__ import annotations

from pathlib import Path

import click

from srgan.datasets.div2k import BASE_URL_ENV, DEFAULT_BASE_URL, DIV2K_ARCHIVES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Download training data."""


def _dataset(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """div2k, the one set srgan downloads; a standard benchmark set's name gets where it
    comes from and how to point at one's own copy, instead of a bare 'invalid choice'."""
    if value.lower() == "div2k":
        return "div2k"
    from srgan.evaluate.methods import STANDARD_SETS

    if value.lower() in STANDARD_SETS:
        raise click.BadParameter(
            f"{STANDARD_SETS[value.lower()]} is not downloaded by srgan (only div2k is): get "
            "its HR images from the authors or a super-resolution toolbox and give the folder "
            f"to srgan benchmark as --data path/to/{value}, or the folder that holds it as "
            "--data-root DIR (see docs/faq.md)")
    raise click.BadParameter(f"{value!r}: srgan downloads div2k only")


@data.command("download")
@click.argument("dataset", metavar="{div2k}", callback=_dataset)
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", default=DEFAULT_BASE_URL, envvar=BASE_URL_ENV, show_default=True,
              help=f"Where the archives are (a mirror with the same names); env {BASE_URL_ENV}.")
@click.option("--parts", default=",".join(DIV2K_ARCHIVES), show_default=True,
              help="Comma-separated parts to get.")
@click.option("--delete-archives", is_flag=True, help="Delete each zip once extracted.")
def download_command(dataset: str, target: Path, base_url: str, parts: str,
                     delete_archives: bool) -> None:
    """Download DATASET into TARGET: resumable, size/SHA-256 checked, extracted.

    \b
      srgan data download div2k data/DIV2K
      srgan train srresnet_x4 --set 'data.train=[data/DIV2K/DIV2K_train_HR]'
    """
    from srgan.datasets.div2k import download_div2k
    from srgan.datasets.download import DownloadError

    try:
        folders = download_div2k(
            target, base_url=base_url, parts=[p.strip() for p in parts.split(",") if p.strip()],
            keep_archives=not delete_archives, log=lambda s: click.echo(s, err=True),
        )
    except DownloadError as exc:
        raise click.ClickException(str(exc)) from None
    for name, folder in folders.items():
        click.echo(f"{name}\t{folder}")
    if "train_hr" in folders:
        val = f" --set data.val={folders['valid_hr']}" if "valid_hr" in folders else ""
        click.echo("train with: srgan train srresnet_x4 --set "
                   f"'data.train=[{folders['train_hr']}]'{val}", err=True)
