"""The SRGAN discriminator (Ledig et al. 2017, Fig. 4, bottom)."""

from __future__ import annotations

import torch
from torch import nn

# (out_channels, stride) of the seven conv-BN-LeakyReLU blocks after the first conv.
PAPER_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2),
)


class Discriminator(nn.Module):
    """Returns one logit per image (the sigmoid belongs in the loss).

    The paper's network sees 96x96 crops, which the four stride-2 convolutions reduce to
    6x6x512 before the dense layer. To accept any crop size (128, 192, ...), an adaptive
    average pool brings the last feature map to `pool_size` (6x6 by default) first; for
    96x96 input it is the identity, so the network is exactly the paper's there.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, pool_size: int = 6) -> None:
        super().__init__()
        width = base_channels / 64
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for out, stride in PAPER_BLOCKS:
            out = max(1, round(out * width))
            layers += [
                nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * pool_size * pool_size, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x))).squeeze(1)
