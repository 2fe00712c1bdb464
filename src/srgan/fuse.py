"""Inference-only rewrites of a generator: BatchNorm folded into convolutions, output range
folded into the last convolution, half precision with an fp32 last layer where it matters.

Everything here works on a copy: the caller's network (which may be training) is never
touched. The rewrites are exact up to float rounding in eval mode, which is what
`tests/test_fast_path.py` checks.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from srgan.nets import SRResNet


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by eval-mode BN -> one conv; computed in float64, stored as conv was."""
    dtype = conv.weight.dtype
    conv64 = copy.deepcopy(conv).double().eval()
    fused = fuse_conv_bn_eval(conv64, copy.deepcopy(bn).double().eval())
    return fused.to(dtype)


def fold_batchnorm(module: nn.Module) -> fx.GraphModule:
    """A traced copy of `module` in eval mode with every BatchNorm2d whose input is a Conv2d
    used nowhere else folded into that conv. Other BatchNorms are kept (still exact)."""
    traced = fx.symbolic_trace(copy.deepcopy(module).eval())
    modules = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        src = node.args[0]
        if not (
            isinstance(src, fx.Node)
            and src.op == "call_module"
            and isinstance(modules[src.target], nn.Conv2d)
            and len(src.users) == 1
        ):
            continue
        bn = modules[node.target]
        if not bn.track_running_stats or bn.running_mean is None:
            continue  # batch statistics at inference: nothing constant to fold
        fused = _fold_pair(modules[src.target], bn)
        _set_submodule(traced, src.target, fused)
        modules[src.target] = fused
        node.replace_all_uses_with(src)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, module)


class _Affine(nn.Module):
    """y -> (y - lo) / (hi - lo), for graphs that do not end in a convolution."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo, self.span = lo, hi - lo

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.lo) / self.span


def fold_output_range(traced: fx.GraphModule, lo: float, hi: float) -> nn.Module:
    """Make a traced generator output [0, 1] instead of [lo, hi]: the affine map goes into the
    weights of the last convolution when the output comes straight from one (no extra pass
    over the full-resolution output)."""
    if (lo, hi) == (0.0, 1.0):
        return traced
    out = next(n for n in traced.graph.nodes if n.op == "output")
    src = out.args[0]
    if isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1:
        conv = traced.get_submodule(src.target)
        if isinstance(conv, nn.Conv2d) and conv.bias is not None:
            with torch.no_grad():
                w, b = conv.weight.double(), conv.bias.double()
                conv.weight.copy_(w / (hi - lo))
                conv.bias.copy_((b - lo) / (hi - lo))
            return traced
    return nn.Sequential(traced, _Affine(lo, hi))


class _Float32Tail(nn.Module):
    """Runs a layer in float32 on a half-precision input and returns float32."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.float())


def inference_model(
    net: SRResNet,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = True,
    fp32_tail: bool | None = None,
) -> nn.Module:
    """The fast form of `net` for inference: input RGB in [0, 1] -> output in [0, 1]
    (unclamped), BatchNorm folded, weights in `dtype`, channels_last memory format.

    `fp32_tail` (default: on for bfloat16) keeps the last convolution in float32: bf16 has
    8 significant bits, too few for outputs within 1/255, while fp16 (11 bits) is enough.
    """
    lo, hi = net.output_range
    model = fold_output_range(fold_batchnorm(net), lo, hi)
    if fp32_tail is None:
        fp32_tail = dtype == torch.bfloat16
    model = model.to(dtype)
    if fp32_tail and dtype != torch.float32:
        _wrap_last_conv(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval().requires_grad_(False)


def _wrap_last_conv(model: nn.Module) -> None:
    """Replace the convolution that runs last (in graph order) by a float32 one."""
    root = model[0] if isinstance(model, nn.Sequential) else model
    assert isinstance(root, fx.GraphModule)
    convs = [n.target for n in root.graph.nodes
             if n.op == "call_module" and isinstance(root.get_submodule(n.target), nn.Conv2d)]
    if not convs:
        raise ValueError("no convolution to keep in float32")
    _set_submodule(root, convs[-1], _Float32Tail(root.get_submodule(convs[-1])))
    root.recompile()


def count_batchnorms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
