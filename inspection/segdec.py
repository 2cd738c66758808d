"""SegDec: a fully convolutional network that predicts a defect map, and decides from it.

After Tabernik et al., "Segmentation-based deep-learning approach for surface-defect detection"
(J. Intell. Manuf. 2019) and Božič et al., "Mixed supervision for surface-defect detection"
(Computers in Industry 2021): a segmentation network marks, per defect class, the cells of a
stride-8 grid that hold a defect; a decision head reads the global average and maximum of the
deepest features and of the map and gives the class. The map is the product's explanation and
its regions; the maximum of the map is what makes a two-pixel crack in a megapixel frame count.

The pass/fail score is the map's own: a learnt affine map of each cell's logit gives the cell's
defect probability, and the frame's defect probability is that of its hottest cell (trained
against the image label, which is how frames without a mask teach the map: weak supervision
through the max-pooled map). So a frame fails exactly when some cell reaches the fail threshold,
and every fail verdict has a region. Which defect it is comes from the decision head. Measured on
KolektorSDD, the map's maximum ranks frames better than the decision head (AP 1.000 vs 0.992).

Because every layer is convolutional, the network runs on a frame of any size in one pass (the
frame padded to a multiple of ``STRIDE``): trained on crops, it infers whole frames. The decision
head sees only global pools; a tiled pass (``inspection.tiling``) stitches the map exactly and
takes the class split from the hottest tile.

Plain 3x3 convolutions and residual stages as in ``defectnet`` (fast on CPUs, easy to train from
scratch); the map comes from the stride-8 features plus the upsampled stride-16 ones, so it sees
a wide context (a receptive field of about 200 pixels) at a fine step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inspection.defectnet import ResidualBlock, _conv_bn

# The geometry lives with its torch-free users: inputs are padded to a multiple of
# preprocess.NATIVE_MULTIPLE (16, the deepest stage's step), a map cell is regions.MAP_STRIDE (8)
# input pixels, tiles overlap by 2 x preprocess.TILE_MARGIN.


class SegDecNet(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 1, map_channels: int = 1,
                 widths: tuple[int, int, int, int] = (16, 32, 64, 128), defect: Sequence[bool] | None = None) -> None:
        """``defect``: per class, whether it is a defect (default: every class but the first)."""
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = _conv_bn(in_channels, w0, 2)  # stride 2
        self.stage1 = ResidualBlock(w0, w1, 2)  # 4
        self.stage2 = ResidualBlock(w1, w2, 2)  # 8
        self.stage3 = ResidualBlock(w2, w3, 2)  # 16
        self.lateral = nn.Conv2d(w3, w2, 1)
        self.seg = nn.Sequential(_conv_bn(w2, w2 // 2), nn.Conv2d(w2 // 2, map_channels, 1))
        self.classifier = nn.Linear(2 * w3 + 2 * map_channels, num_classes)
        self.map_channels = map_channels
        # cell logit -> calibrated cell logit: scale (through softplus, so it stays positive) and shift
        self.frame = nn.Parameter(torch.tensor([0.5413, 0.0]))  # softplus(0.5413) = 1
        flags = list(defect) if defect is not None else [i > 0 for i in range(num_classes)]
        if len(flags) != num_classes:
            raise ValueError(f"defect needs one flag per class ({num_classes}), not {len(flags)}")
        self.register_buffer("defect", torch.tensor(flags, dtype=torch.bool), persistent=False)

    def cell_logits(self, map_logits: torch.Tensor) -> torch.Tensor:
        """Map logits -> calibrated logits of "this cell holds a defect"."""
        return F.softplus(self.frame[0]) * map_logits + self.frame[1]

    def frame_logit(self, map_logits: torch.Tensor) -> torch.Tensor:
        """(N,) logit of "this frame holds a defect": its hottest cell's."""
        return self.cell_logits(map_logits).flatten(1).amax(1)

    def probs_and_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class probabilities, cell defect probabilities): the defect mass is the frame's defect
        probability, shared among the defect classes (and the rest among the pass classes) as the
        decision head weighs them."""
        logits, map_logits = self.forward_with_map(x)
        cells = self.cell_logits(map_logits)
        defect = self.defect
        if bool(defect.all()) or not bool(defect.any()):  # no pass/fail split: the head alone
            return torch.softmax(logits, dim=1), torch.sigmoid(cells)
        p = torch.sigmoid(cells.flatten(1).amax(1))[:, None]
        neg = torch.finfo(logits.dtype).min
        within_defect = torch.softmax(logits.masked_fill(~defect, neg), dim=1)
        within_pass = torch.softmax(logits.masked_fill(defect, neg), dim=1)
        return p * within_defect + (1 - p) * within_pass, torch.sigmoid(cells)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(deepest features at stride 16, map logits at stride 8)."""
        f8 = self.stage2(self.stage1(self.stem(x)))
        f16 = self.stage3(f8)
        fused = f8 + F.interpolate(self.lateral(f16), size=f8.shape[-2:], mode="nearest")
        return f16, self.seg(fused)

    def decide(self, pooled: torch.Tensor) -> torch.Tensor:
        """Class logits from ``pool(features, map)`` (N, 2 * (C16 + D))."""
        return self.classifier(pooled)

    @staticmethod
    def pool(f16: torch.Tensor, map_logits: torch.Tensor) -> torch.Tensor:
        return torch.cat([f16.mean((2, 3)), f16.amax((2, 3)), map_logits.mean((2, 3)), map_logits.amax((2, 3))], 1)

    def forward_with_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits, map logits (N, D, H/8, W/8))."""
        f16, map_logits = self.features(x)
        return self.decide(self.pool(f16, map_logits)), map_logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_map(x)[0]


class WithProbsAndMap(nn.Module):
    """What the bundle's ONNX graph and the torch backend compute: (class probabilities, defect map
    probabilities), so both backends return, and are parity-checked on, the same numbers."""

    def __init__(self, model: SegDecNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.probs_and_map(x)


def has_map(model: nn.Module) -> bool:
    return isinstance(model, SegDecNet)
