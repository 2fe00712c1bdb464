"""`srgan models`: what ships inside the package, with each model's card."""

from __future__ import annotations

import click


@click.command()
def models() -> None:
    """List the shipped models with their scale and training note."""
    from srgan.weights import list_models, read_metadata

    shipped = list_models()
    if not shipped:
        click.echo("no models shipped in this installation")
        return
    for name, path in shipped.items():
        config, card = read_metadata(path)
        click.echo(f"{name}  x{config.scale}  {config.num_blocks} blocks, {config.channels} ch")
        if card.description:
            click.echo(f"    {card.description}")
        if card.training:
            click.echo(f"    trained: {card.training}")
