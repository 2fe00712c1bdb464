"""What a Trainer is built from: the precision choice, the content loss, the stage-1 generator
stage 2 starts from, the parameters it keeps fixed, and the BatchNorm buffers a skipped step
restores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from srgan.losses import ContentLoss
from srgan.nets import SRResNet
from srgan.train.config import Config, ConfigError


def load_init_generator(path_text: str, cfg: Config) -> SRResNet:
    """A stage-1 result (generator .safetensors, or its run folder) to start stage 2 from."""
    from srgan.weights import load_generator

    path = Path(path_text)
    if path.is_dir():
        candidates = [path / "generator.safetensors", path / "generator_last.safetensors"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise ConfigError(
                f"model.init: {path} has no generator.safetensors; finish or export that run "
                f"first (srgan export {path} -o {path}/generator.safetensors)"
            )
        path = found
    # A shipped model's name (model.init = "srresnet_x4") stays a string for the lookup.
    net = load_generator(path if path.exists() else path_text).net
    m = cfg.model
    got = (net.scale, net.num_blocks, net.channels)
    if got != (m.scale, m.num_blocks, m.channels):
        raise ConfigError(
            f"model.init: {path} is scale/blocks/channels {got}, the config asks for "
            f"{(m.scale, m.num_blocks, m.channels)}"
        )
    return net


def choose_amp(mode: str, device: torch.device) -> tuple[bool, str]:
    """(bf16 autocast?, why): `auto` takes bf16 on CUDA and on CPUs that multiply it natively
    (AVX-512 BF16, AMX), where it is about 1.8x faster to train; fp32 where it is emulated."""
    if mode == "bf16":
        return True, "train.amp = bf16"
    if mode == "none":
        return False, "train.amp = none"
    if device.type == "cuda":
        return True, "auto: CUDA"
    if device.type == "cpu":
        from srgan.cpu import native_bf16

        native, why = native_bf16()
        return native, f"auto: {why}"
    return False, f"auto: no bf16 autocast on {device.type}"


def bn_buffers(*modules: nn.Module | None) -> list[torch.Tensor]:
    return [b for m in modules if m is not None for b in m.buffers()]


def copy_all(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    """dst[i] <- src[i], in one fused call where torch has it."""
    if not dst:
        return
    try:
        torch._foreach_copy_(dst, src)
    except (AttributeError, RuntimeError):
        for d, s in zip(dst, src, strict=True):
            d.copy_(s)


def freeze_parameters(net: torch.nn.Module, prefixes: Sequence[str]) -> None:
    """Keep the parameters whose names start with one of `prefixes` fixed (no gradient, so
    Adam leaves them alone): e.g. ["upsample", "tail"] lets stage 2 change only the trunk."""
    names = [name for name, _ in net.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ConfigError(f"model.freeze: {prefix!r} names no parameter of the generator "
                              f"(its parts: {', '.join(tops)})")
    for name, param in net.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            param.requires_grad_(False)


def content_loss(cfg: Config, device: torch.device,
                 memory_format: torch.memory_format) -> ContentLoss:
    """The generator's content loss, with its VGG (if any) on `device` in `memory_format`."""
    content = ContentLoss(cfg.loss.content, vgg_scale=cfg.loss.vgg_scale,
                          vgg_weights=cfg.loss.vgg_weights or "imagenet").to(device)
    if content.vgg is not None:
        content.vgg.to(memory_format=memory_format)
    return content
