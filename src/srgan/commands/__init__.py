"""The `srgan` subcommands, one module each (`srgan.cli` loads them lazily): upscale (with
its folder pipeline and video options), train, export, models, benchmark and compare
(evaluate), serve, data; `options` holds the options several of them share.

Each command is the click object in its own module (`srgan.commands.upscale:upscale`, ...);
this package itself exports nothing, so importing one command does not import the others."""

__all__: list[str] = []
