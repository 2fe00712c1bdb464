"""`srgan models`: what ships inside the package, with each model's card."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import click

# A path written into a card by the machine that trained it (/home/..., ../data/train):
# shown by its last folder name only, as the user has no such folder.
_PATH = re.compile(r"(?<![\w.])(?:~|\.{1,2})?/[^\s,;:()]+")


def without_paths(text: str) -> str:
    """`text` with every absolute or ../ path replaced by its last part (`train/`)."""
    return _PATH.sub(lambda m: PurePosixPath(m.group()).name + "/", text)


@click.command()
def models() -> None:
    """List the shipped models with their scale and training note."""
    from srgan.packaged import DEFAULT_MODEL, PLAIN_WORDS
    from srgan.weights import list_models, read_metadata

    shipped = list_models()
    if not shipped:
        click.echo("no models shipped in this installation")
        return
    for name, path in shipped.items():
        config, card = read_metadata(path)
        default = "  (the default)" if name == DEFAULT_MODEL else ""
        click.echo(f"{name}  x{config.scale}  {config.num_blocks} blocks, {config.channels} ch"
                   f"{default}")
        if name in PLAIN_WORDS:
            click.echo(f"    for: {PLAIN_WORDS[name]}")
        if card.description:
            click.echo(f"    {without_paths(card.description)}")
        if card.training:
            click.echo(f"    trained: {without_paths(card.training)}")
