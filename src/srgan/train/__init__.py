"""Training: configs, the two-stage loop, checkpoints, DDP, export (see docs/training.md)."""
