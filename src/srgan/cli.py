"""The `srgan` command. Every subcommand is a module of `srgan.commands`, imported only when
used, so `srgan upscale` does not pay for the trainer or the web server."""

from __future__ import annotations

import importlib
import sys
import warnings

import click

# name -> "module:attribute" of a click.Command
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "upscale": ("srgan.commands.upscale:upscale", "Upscale images or folders with a model."),
    "train": ("srgan.commands.train:train", "Train SRResNet (stage 1) or SRGAN (stage 2)."),
    "export": ("srgan.commands.export:export", "Export a generator (safetensors, ONNX, ...)."),
    "benchmark": ("srgan.commands.evaluate:benchmark", "PSNR/SSIM tables on image folders."),
    "compare": ("srgan.commands.evaluate:compare", "Side-by-side figures: LR|bicubic|SR|HR."),
    "serve": ("srgan.commands.serve:serve", "Web page and HTTP API."),
    "data": ("srgan.commands.data:data", "Download training data (DIV2K)."),
    "models": ("srgan.commands.models:models", "List the shipped models."),
}
# top-level package of an optional dependency -> the extra that installs it
EXTRAS: dict[str, str] = {
    "fastapi": "web", "uvicorn": "web", "multipart": "web", "python_multipart": "web",
    "fastapi_offline": "web", "onnx": "onnx", "onnxruntime": "onnx", "av": "video",
    "tensorboard": "tensorboard", "matplotlib": "plot",
}


def missing_extra(exc: ImportError) -> str | None:
    """The extra whose package `exc` says is missing, or None (a real import bug)."""
    name = getattr(exc, "name", None)
    if not name:
        return None
    return EXTRAS.get(name.split(".")[0])


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module_name, attr = SUBCOMMANDS[name][0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # an optional extra: say which; anything else is a bug
            extra = missing_extra(exc)
            if extra is None:
                raise
            raise click.ClickException(
                f"`srgan {name}` needs the package {exc.name!r}: pip install 'srgan[{extra}]'"
            ) from exc
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="srgan")
@click.pass_context
def main(ctx: click.Context) -> None:
    """srgan: photo-realistic x4 super-resolution (SRResNet / SRGAN, Ledig et al. 2017)."""
    from srgan.atomic import install_signal_cleanup

    install_signal_cleanup()  # SIGTERM / SIGHUP mid-write leave no temporary files
    previous = warnings.showwarning
    warnings.showwarning = show_warning
    ctx.call_on_close(lambda: setattr(warnings, "showwarning", previous))


def warning_line(message: Warning | str, category: type[Warning]) -> str:
    """A Python warning in the tool's own form: `warning: FILE: what` (image warnings name
    their file already), without the source line Python would print."""
    return f"warning: {str(message).strip()}"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` for the command line: one tidy line, above any progress bar."""
    try:
        from srgan.imageio import display_text

        text = display_text(warning_line(message, category))
    except Exception:  # never let reporting a warning fail the command
        text = f"warning: {message}"
    if "tqdm" in sys.modules:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)
    else:
        click.echo(text, err=True)


if __name__ == "__main__":
    main()
