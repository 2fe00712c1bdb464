"""Generators -> ONNX or TorchScript files for other runtimes (`formats`); every failure is
an `ExportError`. A training run's own model file is training's last step (`srgan.train.export`)."""

from srgan.export.errors import ExportError
from srgan.export.formats import (
    RUNTIMES,
    export_model,
    onnx_bytes,
    onnxruntime_session,
    read_onnx_config,
    torchscript_bytes,
)

__all__ = [
    "RUNTIMES", "ExportError", "export_model", "onnx_bytes", "onnxruntime_session",
    "read_onnx_config", "torchscript_bytes",
]
