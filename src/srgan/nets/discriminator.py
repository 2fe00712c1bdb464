"""The SRGAN discriminator (Ledig et al. 2017, Fig. 4, bottom)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (out_channels, stride) of the seven conv-BN-LeakyReLU blocks after the first conv.
PAPER_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 2),
)


class BlurConv2d(nn.Conv2d):
    """A strided convolution that low-passes its input with a fixed [1, 2, 1] x [1, 2, 1] / 16
    filter first (anti-aliased downsampling, Zhang 2019).

    Why: the backward of a 3x3 stride-2 convolution spreads the gradient unevenly over the
    input's pixels (Odena et al. 2016), so a plain discriminator hands the generator a gradient
    with a period-2 checkerboard at every stride; the binomial filter has a zero at that
    frequency. No new parameters: the state dict is a plain Conv2d's."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", (taps[:, None] * taps[None, :] / 16).expand(
            self.in_channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.blur,
                     groups=self.in_channels)
        return super().forward(x)


class Discriminator(nn.Module):
    """Returns one logit per image (the sigmoid belongs in the loss).

    The paper's network sees 96x96 crops, which the four stride-2 convolutions reduce to
    6x6x512 before the dense layer. To accept any crop size (128, 192, ...), an adaptive
    average pool brings the last feature map to `pool_size` (6x6 by default) first; for
    96x96 input it is the identity, so the network is exactly the paper's there.
    `antialias` (not in the paper) blurs before each stride-2 convolution (`BlurConv2d`).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, pool_size: int = 6,
                 antialias: bool = False) -> None:
        super().__init__()
        width = base_channels / 64
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for out, stride in PAPER_BLOCKS:
            out = max(1, round(out * width))
            conv = BlurConv2d if antialias and stride > 1 else nn.Conv2d
            layers += [
                conv(channels, out, 3, stride=stride, padding=1, bias=False),
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
