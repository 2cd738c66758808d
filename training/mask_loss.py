"""Auxiliary defect-mask loss: pixel supervision for a classifier, used only while training.

A classifier trained from scratch on whole frames gets one label per image for a defect that
covers well under 1% of it, and sits at the class prior for hundreds of steps before it finds
where to look. When the dataset has defect masks (the simulator writes them; annotation tools
export them), a 1x1 convolution on the last feature map learns to mark, per defect class,
the cells that hold a defect (Tabernik et al., "Segmentation-based deep-learning approach for
surface-defect detection", 2019, mix pixel and image labels the same way). It shares the
features with the classifier and is dropped from the bundle: serving never sees it.

Images of a defect class without a mask are left out of this loss (unknown is not "clean");
pass-class images count as clean everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inspection.explain import find_target_layer

NO_MASK = -1.0  # mask value meaning "this image has no mask"
# Defect cells are ~1-5% of the map: weight them up so "all clean" is not a cheap optimum.
POS_WEIGHT = 20.0


class WithMaskHead(nn.Module):
    """Wraps a classifier; forward returns (class logits, per-defect-class mask logits)."""

    def __init__(self, model: nn.Module, classes: Sequence[str], pass_classes: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        _, layer, hook_input = find_target_layer(model)
        if not hook_input:
            raise ValueError(f"{type(model).__name__} has no global pool to take features from")
        self._features: torch.Tensor | None = None
        layer.register_forward_hook(lambda _m, inputs, _o: setattr(self, "_features", inputs[0]))
        self.defect_index = [i for i, c in enumerate(classes) if c not in pass_classes]
        channels = self._probe_channels(model)
        self.head = nn.Conv2d(channels, len(self.defect_index), 1)

    def _probe_channels(self, model: nn.Module) -> int:
        conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        was = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, conv.in_channels, 64, 64))
        model.train(was)
        assert self._features is not None  # the hook ran: find_target_layer found a layer on the path
        return int(self._features.shape[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return logits, self.head(self._features)


def mask_loss(seg: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, defect_index: Sequence[int],
              weight: float = 1.0) -> torch.Tensor:
    """``weight`` x BCE between mask logits (N, D, h, w) and masks (N, 1, H, W; 0/1 or NO_MASK) pooled to (h, w)."""
    is_defect = torch.zeros_like(labels, dtype=torch.bool)
    for cls in defect_index:
        is_defect |= labels == cls
    known = (masks[:, 0, 0, 0] != NO_MASK) | ~is_defect  # a pass-class image is clean with or without a mask
    if not bool(known.any()):
        return seg.sum() * 0.0  # keeps the graph (DDP needs every parameter used)
    cells = F.adaptive_max_pool2d(masks.clamp(min=0.0), seg.shape[-2:])  # a defect anywhere marks its cell
    target = torch.zeros_like(seg)
    for channel, cls in enumerate(defect_index):
        rows = labels == cls
        target[rows, channel] = cells[rows, 0]
    loss = F.binary_cross_entropy_with_logits(
        seg, target, pos_weight=torch.tensor(POS_WEIGHT, device=seg.device), reduction="none")
    return weight * loss[known].mean()
