"""Inference-only rewrites of a generator: BatchNorm folded into convolutions, the output
range folded into the last convolution, half precision with an fp32 last layer where it
matters, and the memory-hungry upsampling stages run in row chunks.

Everything here works on a copy: the caller's network (which may be training) is never
touched. The rewrites are exact up to float rounding in eval mode, which is what
`tests/test_fast_path.py` checks.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from srgan.nets import SRResNet

# LR pixels of context the upsampling stages need (3x3 conv at x1, 3x3 at x2, 9x9 at x4:
# 1 + 1/2 + 1 LR pixels), rounded up: chunks cut with this much overlap are exact.
RECONSTRUCT_CONTEXT = 3


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by eval-mode BN -> one conv; computed in float64, stored as conv was."""
    dtype = conv.weight.dtype
    conv64 = copy.deepcopy(conv).double().eval()
    fused = fuse_conv_bn_eval(conv64, copy.deepcopy(bn).double().eval())
    return fused.to(dtype)


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, module)


def _graph(module: nn.Module) -> tuple[fx.Graph, Counter]:
    """The traced graph of `module` (for analysis only) and how often each submodule runs."""
    graph = fx.symbolic_trace(module).graph
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    return graph, calls


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of `module` in eval mode in which every BatchNorm2d that reads only the output
    of a Conv2d (each run once) is folded into that conv and replaced by nn.Identity. The
    copy keeps its class and forward; the other BatchNorms stay (still exact)."""
    model = copy.deepcopy(module).eval()
    graph, calls = _graph(model)
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        bn = model.get_submodule(node.target)
        src = node.args[0] if node.args else None
        if not (
            isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_mean is not None
            and isinstance(src, fx.Node)
            and src.op == "call_module"
            and isinstance(model.get_submodule(src.target), nn.Conv2d)
            and len(src.users) == 1
            and calls[src.target] == 1 and calls[node.target] == 1
        ):
            continue
        _set_submodule(model, src.target, _fold_pair(model.get_submodule(src.target), bn))
        _set_submodule(model, node.target, nn.Identity())
    return model


class _Affine(nn.Module):
    """y -> (y - lo) / (hi - lo), for graphs that do not end in a convolution."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo, self.span = lo, hi - lo

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.lo) / self.span


def fold_output_range(model: nn.Module, lo: float, hi: float) -> nn.Module:
    """Make a generator output [0, 1] instead of [lo, hi]. The affine map goes into the
    weights of the last convolution when the output comes straight from one (no extra pass
    over the full-resolution output); otherwise a small module is appended."""
    if (lo, hi) == (0.0, 1.0):
        return model
    graph, calls = _graph(model)
    out = next(n for n in graph.nodes if n.op == "output")
    src = out.args[0]
    if isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1 \
            and calls[src.target] == 1:
        conv = model.get_submodule(src.target)
        if isinstance(conv, nn.Conv2d) and conv.bias is not None:
            with torch.no_grad():
                w, b = conv.weight.double(), conv.bias.double()
                conv.weight.copy_(w / (hi - lo))
                conv.bias.copy_((b - lo) / (hi - lo))
            if isinstance(model, SRResNet):
                model.output_range = (0.0, 1.0)
            return model
    return nn.Sequential(model, _Affine(lo, hi))


class _Float32Tail(nn.Module):
    """Runs a layer in float32 on a half-precision input and returns float32."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.float())


def _keep_last_conv_fp32(model: nn.Module) -> None:
    """Replace the convolution that runs last (in graph order) by a float32 one."""
    graph, _ = _graph(model)
    convs = [n.target for n in graph.nodes
             if n.op == "call_module" and isinstance(model.get_submodule(n.target), nn.Conv2d)]
    if not convs:
        raise ValueError("no convolution to keep in float32")
    _set_submodule(model, convs[-1], _Float32Tail(model.get_submodule(convs[-1])))


class _InplacePReLU(nn.Module):
    """A one-parameter PReLU applied in place (as leaky ReLU with its slope): the same values,
    without allocating, and so page-faulting, a fresh activation per layer. Only where the
    input is a temporary nobody else reads (see `_inplace_activations`)."""

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.slope = float(prelu.weight.detach().float().item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.leaky_relu_(x, self.slope)


def _inplace_activations(net: SRResNet) -> None:
    """Make SRResNet's one-parameter PReLUs in-place: each reads a fresh conv (or pixel
    shuffle) output that nothing else uses; the head's conv output is not the skip, the
    PReLU's result is."""
    sites = [(net.head, "1")]
    sites += [(block, "act") for block in net.body]
    sites += [(block, "act") for block in net.upsample]
    for parent, name in sites:
        act = parent.get_submodule(name)
        if isinstance(act, nn.PReLU) and act.weight.numel() == 1:
            setattr(parent, name, _InplacePReLU(act))


class FastSRResNet(nn.Module):
    """A folded SRResNet whose upsampling stages run in row chunks.

    The residual trunk (at LR, 64 channels) is cheap in memory; the x2/x4 stages hold
    ~36x more bytes per input pixel. Cutting only them into chunks of `chunk_px` LR pixels
    (with RECONSTRUCT_CONTEXT rows of overlap, which makes it exact) lets a whole tile's
    trunk run at once, so tiles can be ~3x larger a side for the same memory, and less of
    the work is spent on the tiles' context. `chunk_px=None`: no chunks (for export).
    """

    def __init__(self, net: SRResNet, chunk_px: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.scale = net.scale
        self.chunk_px = chunk_px

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net.features(x)
        b, _, h, w = f.shape
        c, s = RECONSTRUCT_CONTEXT, self.scale
        rows = h if self.chunk_px is None else max(8, self.chunk_px // max(1, b * w) - 2 * c)
        if rows >= h:
            return self.net.reconstruct(f)
        out = None
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            a, z = max(0, r0 - c), min(h, r1 + c)
            y = self.net.reconstruct(f[:, :, a:z])
            if out is None:
                out = torch.empty((b, y.shape[1], h * s, w * s), dtype=y.dtype,
                                  device=y.device, memory_format=torch.channels_last)
            out[:, :, r0 * s:r1 * s] = y[:, :, (r0 - a) * s:(r1 - a) * s]
        return out


def inference_model(
    net: nn.Module,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = True,
    fp32_tail: bool | None = None,
    chunk_px: int | None = None,
) -> nn.Module:
    """The fast form of `net` for inference: input RGB in [0, 1] -> output in [0, 1]
    (unclamped), BatchNorm folded, weights in `dtype`, channels_last memory format, and for
    an SRResNet the upsampling stages in chunks of `chunk_px` LR pixels (None: whole).

    `fp32_tail` (default: on for bfloat16) keeps the last convolution in float32: bf16 has
    8 significant bits, too few for outputs within 1/255, while fp16 (11 bits) is enough.
    """
    lo, hi = net.output_range
    model = fold_output_range(fold_batchnorm(net), lo, hi)
    if fp32_tail is None:
        fp32_tail = dtype == torch.bfloat16
    model = model.to(dtype)
    if fp32_tail and dtype != torch.float32:
        _keep_last_conv_fp32(model)
    if isinstance(model, SRResNet):
        _inplace_activations(model)
        model = FastSRResNet(model, chunk_px)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval().requires_grad_(False)


def count_batchnorms(module: nn.Module) -> int:
    """BatchNorm layers that still compute (folded ones are nn.Identity)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
