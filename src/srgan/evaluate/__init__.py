"""Evaluation: the literature's benchmark protocol (`run_benchmark`) and side-by-side figures
(`compare_images`). The `srgan benchmark` and `srgan compare` commands are thin layers over
these (see `srgan.commands.evaluate`)."""

from srgan.evaluate.benchmark import run_benchmark
from srgan.evaluate.compare import Figure, compare_images
from srgan.evaluate.methods import BICUBIC, Bicubic, Method, Network, load_methods
from srgan.evaluate.results import BenchmarkResult, ImageScore, Skipped

__all__ = [
    "BICUBIC",
    "BenchmarkResult",
    "Bicubic",
    "Figure",
    "ImageScore",
    "Method",
    "Network",
    "Skipped",
    "compare_images",
    "load_methods",
    "run_benchmark",
]
