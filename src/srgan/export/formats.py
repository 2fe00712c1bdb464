"""Generators -> ONNX and TorchScript files for other runtimes.

What is exported is `srgan.fuse.inference_model`: BatchNorm folded, float32, input RGB in
[0, 1] (N, 3, H, W) -> output RGB in [0, 1] (N, 3, sH, sW), clamped; height, width and batch
are dynamic. The same ONNX graph is what `Upscaler(backend="onnxruntime")` runs.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from srgan.atomic import atomic_write
from srgan.export.errors import ExportError
from srgan.fuse import inference_model
from srgan.nets import SRResNet
from srgan.weights import GeneratorConfig, LoadedModel

RUNTIMES = ("onnx", "torchscript")
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "upscaled"


class _Exported(nn.Module):
    """The fused generator with its output clamped to [0, 1]: what other runtimes get."""

    def __init__(self, net: SRResNet) -> None:
        super().__init__()
        self.model = inference_model(net, torch.float32, channels_last=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).clamp(0.0, 1.0)


def _example(net: SRResNet) -> torch.Tensor:
    return torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))


def onnx_bytes(net: SRResNet, name: str = "") -> bytes:
    """The fused generator as an ONNX model (bytes), dynamic batch, height and width;
    `name` (the model card's) is recorded in its metadata."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as exc:
        raise ExportError("ONNX export needs the onnx package: pip install 'srgan[onnx]'") from exc
    model = _Exported(net).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript-based exporter: no onnxscript dependency, and it handles this
        # purely convolutional graph completely; its deprecation notice is not for users
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (_example(net),), buf, dynamo=False, opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                          OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}},
        )
    return _with_metadata(buf.getvalue(), net, name)


def _with_metadata(data: bytes, net: SRResNet, name: str) -> bytes:
    """Record the scale and config in the ONNX file, so a reader knows what it holds."""
    import onnx

    proto = onnx.load_from_string(data)
    meta = {"srgan.config": GeneratorConfig.of(net).to_json(), "srgan.scale": str(net.scale),
            "srgan.io": "RGB float32 NCHW in [0, 1] -> RGB float32 NCHW in [0, 1]"}
    if name:
        meta["srgan.name"] = name
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def torchscript_bytes(net: SRResNet) -> bytes:
    """The fused generator traced to TorchScript (load with torch.jit.load)."""
    model = _Exported(net).eval()
    buf = io.BytesIO()
    extra = {"srgan.config": GeneratorConfig.of(net).to_json()}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices are not for users
        traced = torch.jit.trace(model, (_example(net),), check_trace=False)
        torch.jit.save(traced, buf, _extra_files=extra)
    return buf.getvalue()


def export_model(model: LoadedModel | SRResNet, output: str | Path, fmt: str,
                 overwrite: bool = False) -> Path:
    """Write a loaded model (or a bare network) as `fmt` ("onnx" or "torchscript") to
    `output`, atomically; an existing file is replaced only with `overwrite`."""
    if isinstance(model, LoadedModel):
        net, name = model.net, model.card.name
    else:
        net, name = model, ""
    if fmt not in RUNTIMES:
        raise ExportError(f"format must be one of {RUNTIMES}, got {fmt!r}")
    output = Path(output)
    if not overwrite and output.exists():
        raise ExportError(f"{output}: exists (use --overwrite to replace it)")
    payload = onnx_bytes(net, name) if fmt == "onnx" else torchscript_bytes(net)
    _atomic_write(output, payload, overwrite)
    return output


def _atomic_write(path: Path, payload: bytes, overwrite: bool) -> None:
    if not path.parent.is_dir():
        raise ExportError(f"{path}: output folder {path.parent} does not exist")
    try:
        atomic_write(path, lambda fh: fh.write(payload), overwrite=overwrite)
    except FileExistsError:
        raise ExportError(f"{path}: exists (use --overwrite to replace it)") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None


def onnxruntime_session(net_or_bytes: SRResNet | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for a generator (exported on the fly) or ONNX bytes."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ExportError("the onnxruntime backend needs: pip install 'srgan[onnx]'") from exc
    data = net_or_bytes if isinstance(net_or_bytes, bytes) else onnx_bytes(net_or_bytes)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def read_onnx_config(path: str | Path) -> GeneratorConfig:
    """The generator config stored in an exported ONNX file."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "srgan.config" not in meta:
        raise ExportError(f"{path}: not an ONNX file exported by srgan")
    return GeneratorConfig.from_json(meta["srgan.config"])


__all__ = [
    "RUNTIMES", "ExportError", "export_model", "onnx_bytes",
    "onnxruntime_session", "read_onnx_config", "torchscript_bytes",
]
