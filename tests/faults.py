"""Fault injection for the training tests, through `Trainer.fit`'s callbacks.

In-process: `run_training(cfg, run_dir, callbacks=[Faults(nan_steps=[3])])`. For `srgan train`
in a subprocess (or under torchrun), run this file instead of `-m srgan`:

    python tests/faults.py '{"kill_at": 7}' train CONFIG --set ...

It adds the faults to every `run_training` call, then runs the srgan command line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from srgan.device import torchrun_env
from srgan.train.callbacks import TrainCallback


@dataclass
class Faults(TrainCallback):
    kill_at: int = 0  # SIGKILL this process right after step N
    signal_at: int = 0  # send SIGTERM to this process after step N
    nan_steps: list[int] = field(default_factory=list)  # steps (1-based) given a NaN batch
    dump_weights: str = ""  # folder: each rank writes rank<R>.pt of its G and D at the end

    def on_batch(self, state, step, lr_img, hr):
        if step in self.nan_steps:
            lr_img = lr_img * float("nan")
        return lr_img, hr

    def on_step_end(self, state) -> None:
        if self.kill_at and state.step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.signal_at and state.step == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_fit_end(self, state, result) -> None:
        if not self.dump_weights:
            return
        folder = Path(self.dump_weights)
        folder.mkdir(parents=True, exist_ok=True)
        params = {f"g.{k}": v.detach().cpu() for k, v in state.g.named_parameters()}
        if state.d is not None:
            params.update({f"d.{k}": v.detach().cpu() for k, v in state.d.named_parameters()})
        torch.save(params, folder / f"rank{torchrun_env().rank}.pt")


def main(argv: list[str]) -> None:
    """`srgan ARGV[1:]` with the faults of the JSON in ARGV[0] in every training run."""
    import srgan.train.run as run
    from srgan.cli import main as cli

    faults = Faults(**json.loads(argv[0]))
    original = run.run_training

    def run_training(*args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), faults]
        return original(*args, **kwargs)

    run.run_training = run_training
    cli(argv[1:], prog_name="srgan")


if __name__ == "__main__":
    main(sys.argv[1:])
