"""The defect-map network's training loss, beside the class cross-entropy: pixel supervision where a
mask exists (``mask_loss``), and the frame's own defect probability (its hottest cell, after the
network's learnt calibration) against the image label, which is all a frame without a mask gives:
weak supervision through the max-pooled map, in the same run."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.mask_loss import mask_loss


class MapTraining(nn.Module):
    """What the optimizer trains: forward returns (class logits, map logits, frame defect logit)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, map_logits = self.model.forward_with_map(x)
        return logits, map_logits, self.model.frame_logit(map_logits)


def segdec_loss(map_logits: torch.Tensor, frame_logit: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor,
                defect_index: Sequence[int], weight: float = 1.0) -> torch.Tensor:
    is_defect = torch.zeros_like(labels, dtype=torch.bool)
    for cls in defect_index:
        is_defect |= labels == cls
    frame = F.binary_cross_entropy_with_logits(frame_logit, is_defect.float())
    return frame + mask_loss(map_logits, labels, masks, defect_index, weight)
