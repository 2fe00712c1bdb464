"""Training: configs, the two stages, the loop over a plain training state, checkpoints, DDP
and the generator file at the end (see docs/training.md).

The modules are the API: `srgan.train.config` (`load_config`, `Config`), `srgan.train.run`
(`run_training`), `srgan.train.checkpoint`, `srgan.train.export` (`export_generator`). This
package itself exports nothing, so reading a config does not import the loop."""

__all__: list[str] = []
