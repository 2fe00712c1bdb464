"""SRResNet, the generator of SRGAN (Ledig et al. 2017, Fig. 4, top)."""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN plus identity: the B blocks of the paper."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class UpsampleBlock(nn.Module):
    """Sub-pixel convolution (Shi et al. 2016): x2 per block, no checkerboard from deconvs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """The paper's generator. Input: RGB in [0, 1]. Output: RGB in `output_range`.

    The paper scales HR images (and so the generator output) to [-1, 1]; that is our
    default. `scale` must be a power of two: one sub-pixel block per factor 2.
    """

    def __init__(
        self,
        scale: int = 4,
        num_blocks: int = 16,
        channels: int = 64,
        output_range: tuple[float, float] = (-1.0, 1.0),
    ) -> None:
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.num_blocks = num_blocks
        self.channels = channels
        self.output_range = (float(output_range[0]), float(output_range[1]))
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*[ResidualBlock(channels) for _ in range(num_blocks)])
        self.body_tail = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        )
        self.upsample = nn.Sequential(
            *[UpsampleBlock(channels) for _ in range(int(math.log2(scale)))]
        )
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The residual trunk, at input resolution (cheap in memory)."""
        head = self.head(x)
        return head + self.body_tail(self.body(head))

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """The upsampling stages and the last convolution: ~36x the trunk's bytes per input
        pixel, so fast inference runs them in row chunks (`srgan.fuse.FastSRResNet`)."""
        return self.tail(self.upsample(features))

    def to_unit(self, y: torch.Tensor) -> torch.Tensor:
        """Map raw generator output from `output_range` to [0, 1] (unclamped)."""
        lo, hi = self.output_range
        if (lo, hi) == (0.0, 1.0):
            return y
        return (y - lo) / (hi - lo)

    def from_unit(self, y: torch.Tensor) -> torch.Tensor:
        """Map an image in [0, 1] to the range the generator is trained to output."""
        lo, hi = self.output_range
        if (lo, hi) == (0.0, 1.0):
            return y
        return y * (hi - lo) + lo
