"""The network to start from: random, pretrained backbone, or an existing bundle (fine-tuning)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inspection.bundle import load_bundle
from inspection.card import ModelCard, map_classes
from inspection.decision import defect_mask
from inspection.models import create_model
from inspection.segdec import has_map


def head_name(model: nn.Module) -> str:
    """Dotted name of the classifier head (the last Linear layer of every registered family)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def from_bundle(path: str, classes: Sequence[str], pass_classes: Sequence[str] = ()) -> tuple[nn.Module, ModelCard]:
    """The parent bundle's network with a head for ``classes``.

    Every backbone weight is copied; head rows are copied by class name, so a class the parent
    knew keeps what it learnt and a new defect class starts from a fresh row.
    """
    bundle = load_bundle(path)
    parent = bundle.card
    model = build_network(parent.arch, classes, pass_classes, parent.preprocess.channels, None)
    old = bundle.state_dict()
    head = head_name(model)
    new = model.state_dict()
    for key, value in old.items():
        if not key.startswith(head + ".") and key in new and new[key].shape == value.shape:
            new[key] = value
    _copy_by_class(new, old, head, parent.classes, classes)
    if has_map(model):  # the map's last layer has one output channel per defect class
        _copy_by_class(new, old, MAP_OUT, parent.map_classes, map_classes(classes, pass_classes))
    model.load_state_dict(new)
    return model, parent


MAP_OUT = "seg.1"  # segdec's map output convolution


def _copy_by_class(new: dict, old: dict, layer: str, old_classes: Sequence[str], classes: Sequence[str]) -> None:
    """Rows of ``layer`` (weight and bias) copied by class name where the parent had the class and the
    row's shape is unchanged (a map network's head grows with its map channels: those rows start fresh)."""
    old_index = {c: i for i, c in enumerate(old_classes)}
    with torch.no_grad():
        for i, c in enumerate(classes):
            for part in ("weight", "bias"):
                key = f"{layer}.{part}"
                if c in old_index and key in old and old[key].shape[1:] == new[key].shape[1:]:
                    new[key][i] = old[key][old_index[c]]


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """torchvision's MobileNetV3 and EfficientNet use 0.01, tuned for 600-epoch ImageNet runs: in a
    few hundred CPU steps their running statistics never catch up and eval accuracy lags far
    behind training. Running statistics are buffers, so this changes nothing in the bundle format.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def build_network(arch: str, classes: Sequence[str], pass_classes: Sequence[str], channels: int,
                  weights: str | None) -> nn.Module:
    defect = defect_mask(classes, pass_classes).tolist()
    return create_model(arch, num_classes=len(classes), weights=weights, in_channels=channels,
                        map_channels=len(map_classes(classes, pass_classes)), defect=defect)
