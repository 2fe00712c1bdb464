"""`srgan data`: get training data."""

from __future__ import annotations

from pathlib import Path

import click

from srgan.datasets.div2k import BASE_URL_ENV, DEFAULT_BASE_URL, DIV2K_ARCHIVES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Download training data."""


@data.command("download")
@click.argument("dataset", type=click.Choice(["div2k"]))
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
      srgan train srresnet_x4 --set data.train=[data/DIV2K/DIV2K_train_HR]
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
        click.echo(f"train with: srgan train srresnet_x4 --set data.train=[{folders['train_hr']}]"
                   f"{val}", err=True)
