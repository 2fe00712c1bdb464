"""Exporting generators: a training run or checkpoint -> a self-describing .safetensors model
file (`generator`), and any generator -> ONNX or TorchScript for other runtimes (`formats`).
Every failure is an `ExportError`."""

from srgan.export.errors import ExportError
from srgan.export.formats import (
    FORMATS,
    export_model,
    load_source,
    onnx_bytes,
    onnxruntime_session,
    read_onnx_config,
    torchscript_bytes,
)
from srgan.export.generator import (
    export_generator,
    export_run_generator,
    generator_from_state,
    load_run_generator,
    model_card,
    resolve_checkpoint,
)

__all__ = [
    "FORMATS", "ExportError", "export_generator", "export_model", "export_run_generator",
    "generator_from_state", "load_run_generator", "load_source", "model_card", "onnx_bytes",
    "onnxruntime_session", "read_onnx_config", "resolve_checkpoint", "torchscript_bytes",
]
