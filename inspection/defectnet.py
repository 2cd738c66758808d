"""DefectNet: a small residual CNN that trains from scratch on a 2-core CPU.

torchvision's mobile architectures are built for ImageNet-sized data and pretrained weights;
from scratch on a few thousand inspection images (and no weights to download on a plant
network) they sit at the class prior for hundreds of steps. This net has plain 3x3
convolutions (fast on CPUs, unlike depthwise ones), residual stages for an easy start, and
pools both the mean and the maximum of the last features: a defect is often a few pixels,
which an average over the whole part dilutes and a maximum keeps.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride), _conv_bn(cout, cout, relu=False))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


class AvgMaxPool(nn.Module):
    """Global average and global maximum, concatenated: (N, C, H, W) -> (N, 2C)."""

    def __init__(self) -> None:
        super().__init__()
        self.avg, self.max = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.avg(x), self.max(x)], 1).flatten(1)


class DefectNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, widths: tuple[int, ...] = (24, 32, 64, 128),
                 weights: None = None, progress: bool = False) -> None:
        super().__init__()
        if weights is not None:
            raise ValueError("DefectNet has no published weights; pass a local weights file instead")
        stages: list[nn.Module] = [_conv_bn(in_channels, widths[0], 2)]
        stages += [ResidualBlock(a, b, 2) for a, b in pairwise(widths)]
        self.features = nn.Sequential(*stages)  # stride 2 ** len(widths): 16 by default
        self.pool = AvgMaxPool()
        self.classifier = nn.Linear(2 * widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))
