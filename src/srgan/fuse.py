"""Inference-only rewrites of a generator: BatchNorm folded into convolutions, the output
range folded into the last convolution, half precision with an fp32 last layer where it
matters (and, for CPUs with native bf16, the mix measured in docs/performance.md), and the
memory-hungry upsampling stages run in row chunks.

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


def _input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype `model`'s first convolution computes in (float32 for CpuBf16SRResNet)."""
    if isinstance(model, CpuBf16SRResNet):
        return torch.float32
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d)).weight.dtype


class _CastInput(nn.Module):
    """Casts the input to the dtype the next module computes in (callers pass float32)."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


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


class CpuBf16SRResNet(nn.Module):
    """A folded SRResNet whose bulk runs in bf16 on CPUs that multiply bf16 natively.

    Measured on the shipped srresnet_x4 and Set5/Set14 (docs/performance.md): bf16 throughout
    (with an fp32 last conv) is off by up to 2/255. What brings the 8-bit output within 1/255
    is keeping in float32 the input and first conv (pixel values k/255 are not bf16
    numbers), the residual stream (16 skip additions in bf16 add up their rounding), the
    first x2 stage and the last conv; the 33 trunk convolutions and the x4 stage, 79% of
    the arithmetic, run in bf16. With the campaign's better-trained weights that mix reached
    2/255 on 6 of 19 Set5/Set14 images (56 of 11.4M values); the first residual block in
    float32 too (2 of the 33 trunk convolutions) brings every value back within 1/255 and
    halves the share that differs (11.4% -> 4.6%). Takes and returns float32; same
    `features`/`reconstruct` split as SRResNet, so `FastSRResNet` can chunk it.
    """

    FP32_BLOCKS = 1  # leading residual blocks kept in float32

    def __init__(self, net: SRResNet, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.scale, self.dtype = net.scale, dtype
        self.head = net.head.float()
        self.body = net.body.to(dtype)
        for block in self.body[: self.FP32_BLOCKS]:
            block.float()
        self.body_tail = net.body_tail.to(dtype)
        self.up_first = net.upsample[0].float()
        self.up_rest = net.upsample[1:].to(dtype)
        self.tail = net.tail.float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x.float())
        stream = head
        for i, b in enumerate(self.body):  # ResidualBlock with its skip added in float32
            dtype = torch.float32 if i < self.FP32_BLOCKS else self.dtype
            y = b.bn2(b.conv2(b.act(b.bn1(b.conv1(stream.to(dtype))))))
            stream = head + y if stream is head else stream.add_(y)
        return head + self.body_tail(stream.to(self.dtype))

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        y = self.up_first(features.float())
        if len(self.up_rest):
            y = self.up_rest(y.to(self.dtype))
        return self.tail(y.float())


class _ShuffledTail(nn.Module):
    """The last convolution run before the last pixel shuffle instead of after it."""

    def __init__(self, conv: nn.Conv2d, factor: int) -> None:
        super().__init__()
        self.conv = conv
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def _tail_before_shuffle(net: SRResNet) -> None:
    """Rewrite SRResNet's last stage, shuffle(64*4 ch) -> PReLU -> 9x9 conv to 3 ch at full
    resolution, as PReLU -> 5x5 conv from 256 to 12 ch at half resolution -> shuffle(12 ch).

    Exact (same sums, zero padding maps to zero padding; a one-slope PReLU commutes with the
    shuffle), 1.23x the multiply-adds, but oneDNN runs a conv with 3 output channels at a
    fifth of its speed (measured: the 9x9 tail took 39% of the fp32 conv time), and the
    full-resolution 64-channel shuffle disappears. Weights built in float64.
    """
    last, tail = net.upsample[-1], net.tail
    act, shuffle = getattr(last, "act", None), getattr(last, "shuffle", None)
    scalar_act = isinstance(act, _InplacePReLU) or (
        isinstance(act, nn.PReLU) and act.weight.numel() == 1)
    k = tail.kernel_size[0]
    if not (scalar_act and isinstance(shuffle, nn.PixelShuffle) and shuffle.upscale_factor == 2
            and isinstance(tail, nn.Conv2d) and tail.kernel_size == (k, k) and k % 2
            and tail.stride == (1, 1) and tail.dilation == (1, 1) and tail.groups == 1
            and tail.padding == (k // 2, k // 2) and tail.padding_mode == "zeros"
            and tail.bias is not None):
        return
    r = k // 2
    big = (r + 1) // 2  # reach of the new kernel, in half-resolution pixels
    w = tail.weight.detach().double()
    cout, cin = w.shape[:2]
    w2 = torch.zeros(cout, 4, cin, 4, 2 * big + 1, 2 * big + 1, dtype=torch.float64)
    for ao in range(2):
        for bo in range(2):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    a, b = (ao + dy) % 2, (bo + dx) % 2
                    m, n = (ao + dy - a) // 2, (bo + dx - b) // 2
                    w2[:, ao * 2 + bo, :, a * 2 + b, m + big, n + big] = w[:, :, dy + r, dx + r]
    conv = nn.Conv2d(cin * 4, cout * 4, 2 * big + 1, padding=big)
    with torch.no_grad():
        conv.weight.copy_(w2.reshape(cout * 4, cin * 4, 2 * big + 1, 2 * big + 1))
        conv.bias.copy_(tail.bias.detach().double().repeat_interleave(4))
    last.shuffle = nn.Identity()
    net.tail = _ShuffledTail(conv.to(tail.weight.dtype), 2)


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
        dtype = _input_dtype(self.net)
        f = self.net.features(x if x.dtype == dtype else x.to(dtype))
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
    cpu_mix: bool = False,
) -> nn.Module:
    """The fast form of `net` for inference: input RGB in [0, 1] -> output in [0, 1]
    (unclamped), BatchNorm folded, weights in `dtype`, channels_last memory format, and for
    an SRResNet the upsampling stages in chunks of `chunk_px` LR pixels (None: whole).

    `fp32_tail` (default: on for bfloat16) keeps the last convolution in float32: bf16 has
    8 significant bits, too few for outputs within 1/255, while fp16 (11 bits) is enough.
    `cpu_mix` (bf16 SRResNet only): `CpuBf16SRResNet`'s mix, within 1/255 on photographs,
    for CPUs with native bf16. Every form takes float32 input and casts it as it needs.
    """
    lo, hi = net.output_range
    model = fold_output_range(fold_batchnorm(net), lo, hi)
    if isinstance(model, SRResNet):
        _tail_before_shuffle(model)
    if cpu_mix and dtype == torch.bfloat16 and isinstance(model, SRResNet):
        _inplace_activations(model)
        model = FastSRResNet(CpuBf16SRResNet(model, dtype), chunk_px)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model.eval().requires_grad_(False)
    if fp32_tail is None:
        fp32_tail = dtype == torch.bfloat16
    model = model.to(dtype)
    if fp32_tail and dtype != torch.float32:
        _keep_last_conv_fp32(model)
    if isinstance(model, SRResNet):
        _inplace_activations(model)
        model = FastSRResNet(model, chunk_px)
    elif dtype != torch.float32:
        model = nn.Sequential(_CastInput(_input_dtype(model)), model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval().requires_grad_(False)


def count_batchnorms(module: nn.Module) -> int:
    """BatchNorm layers that still compute (folded ones are nn.Identity)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
