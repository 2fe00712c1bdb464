"""Old home of `srgan.commands.serve` (every subcommand lives in `srgan.commands`); its
names still import from here."""

from srgan.commands import forward_to

__getattr__ = forward_to("srgan.commands.serve")
