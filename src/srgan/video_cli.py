"""Old home of `srgan.commands.video` (every subcommand lives in `srgan.commands`); its
names still import from here."""

from srgan.commands import forward_to

__getattr__ = forward_to("srgan.commands.video")
