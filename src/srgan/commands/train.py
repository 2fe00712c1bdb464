"""`srgan train`: the command-line face of srgan.train.run (run_training)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from srgan.commands.options import FiniteFloatRange
from srgan.train.config import (
    Config,
    ConfigError,
    load_config,
    packaged_configs,
)


def _echo(text: str) -> None:
    click.echo(text, err=True)


def _resolve(
    config: str | None, overrides: tuple[str, ...], resume: str | None, run_dir: str | None,
    auto_resume: bool,
) -> tuple[Config, Path, bool]:
    """(config, run folder, resuming?) from the command line."""
    if resume:
        folder = Path(resume)
        if not (folder / "config.toml").is_file():
            raise ConfigError(f"--resume {folder}: not a run folder (no config.toml)")
        cfg = load_config(folder / "config.toml", overrides).absolute_paths()  # --set paths
        if config:
            _warn_differences(load_config(config, overrides), cfg)
        return cfg, folder, True
    if not config:
        raise click.UsageError("give a CONFIG (e.g. srresnet_x4) or --resume RUN_DIR")
    cfg = load_config(config, overrides)
    folder = Path(run_dir) if run_dir else Path(cfg.run.dir) / cfg.name
    if auto_resume and (folder / "config.toml").is_file():
        from srgan.train.checkpoint import list_checkpoints

        if list_checkpoints(folder / "checkpoints"):
            stored = load_config(folder / "config.toml", overrides).absolute_paths()
            _warn_differences(cfg, stored)
            return stored, folder, True
    return cfg, folder, False


def _warn_differences(wanted: Config, stored: Config) -> None:
    wanted.absolute_paths()  # the run folder stores its data paths absolute
    a, b = wanted.flat(), stored.flat()
    pinned = ("run.name", "run.based_on")  # set when the run started
    diff = [k for k in a if a[k] != b[k] and k not in pinned]
    if diff:
        _echo(f"warning: resuming with the run folder's config, which differs from the given "
              f"config in {', '.join(diff)}; use --set to change those")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.batch_size=32 "
                   "--set 'data.train=[dir1,dir2]'. Repeatable.")
@click.option("--resume", type=click.Path(file_okay=False), default=None, metavar="RUN_DIR",
              help="Continue a run from its newest usable checkpoint (bit-exact on CPU).")
@click.option("--auto-resume", is_flag=True,
              help="Resume the run folder if it already has a checkpoint, else start it.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: run.dir/run.name, i.e. runs/CONFIG).")
@click.option("--time-limit", type=FiniteFloatRange(0, 10**7), default=None, metavar="MINUTES",
              help="Stop cleanly after this many minutes of training, with a checkpoint and the "
                   "weights so far in generator.safetensors; --resume continues.")
@click.option("--list-configs", is_flag=True, help="List the packaged configs and exit.")
def train(
    config: str | None, overrides: tuple[str, ...], resume: str | None, auto_resume: bool,
    run_dir: str | None, time_limit: float | None, list_configs: bool,
) -> None:
    """Train SRResNet (stage 1) or SRGAN (stage 2) from a CONFIG.

    CONFIG is a packaged config (srresnet_x4, srgan_x4, srgan_mse_x4) or a TOML file. The run
    folder gets config.toml, log.jsonl, checkpoints/, val/ and, at the end or a --time-limit
    stop, generator.safetensors. One run at a time per folder (it is locked); a run that
    diverges (non-finite losses) stops with an error.

    \b
      srgan train srresnet_x4 --set 'data.train=[photos]' --set data.val=Set5
      srgan train srgan_mse_x4 --set model.init=runs/srresnet_x4 --set 'data.train=[photos]'
      srgan train --resume runs/srresnet_x4
      torchrun --nproc_per_node 8 -m srgan train srresnet_x4 --set 'data.train=[photos]'
    """
    from srgan.data import DataError
    from srgan.device import DeviceError
    from srgan.nets import VGGWeightsMissing
    from srgan.train.checkpoint import CheckpointError
    from srgan.train.loop import TrainingDiverged
    from srgan.train.run import run_training
    from srgan.weights import ModelFileError

    if list_configs:
        for name, path in packaged_configs().items():
            click.echo(f"{name}\t{path}")
        return
    try:
        cfg, folder, resuming = _resolve(config, overrides, resume, run_dir, auto_resume)
        result = run_training(
            cfg, folder, resume=resuming,
            time_limit=time_limit * 60 if time_limit is not None else None, log=_echo,
        )
    except (ConfigError, DataError, DeviceError, VGGWeightsMissing, CheckpointError,
            TrainingDiverged, ModelFileError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        from srgan.train.distributed import shutdown

        shutdown()
    if result.stopped and result.exit_code:
        sys.exit(result.exit_code)
