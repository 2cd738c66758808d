"""The network to start from: random, pretrained backbone, or an existing bundle (fine-tuning)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inspection.bundle import load_bundle
from inspection.card import ModelCard
from inspection.models import create_model


def head_name(model: nn.Module) -> str:
    """Dotted name of the classifier head (the last Linear layer of every registered family)."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def from_bundle(path: str, classes: Sequence[str]) -> tuple[nn.Module, ModelCard]:
    """The parent bundle's network with a head for ``classes``.

    Every backbone weight is copied; head rows are copied by class name, so a class the parent
    knew keeps what it learnt and a new defect class starts from a fresh row.
    """
    bundle = load_bundle(path)
    parent = bundle.card
    model = create_model(parent.arch, num_classes=len(classes), in_channels=parent.preprocess.channels)
    old = bundle.state_dict()
    head = head_name(model)
    new = model.state_dict()
    for key, value in old.items():
        if not key.startswith(head + ".") and key in new and new[key].shape == value.shape:
            new[key] = value
    old_index = {c: i for i, c in enumerate(parent.classes)}
    with torch.no_grad():
        for i, c in enumerate(classes):
            if c in old_index:
                new[f"{head}.weight"][i] = old[f"{head}.weight"][old_index[c]]
                new[f"{head}.bias"][i] = old[f"{head}.bias"][old_index[c]]
    model.load_state_dict(new)
    return model, parent


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """torchvision's MobileNetV3 and EfficientNet use 0.01, tuned for 600-epoch ImageNet runs: in a
    few hundred CPU steps their running statistics never catch up and eval accuracy lags far
    behind training. Running statistics are buffers, so this changes nothing in the bundle format.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def build_network(arch: str, classes: Sequence[str], channels: int, weights: str | None) -> nn.Module:
    return create_model(arch, num_classes=len(classes), weights=weights, in_channels=channels)
