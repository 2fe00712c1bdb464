"""Subcommands of the `srgan` CLI that drive inference and model files."""
