"""Registry of torchvision architectures: ``create_model(name, num_classes=..., weights=...)``.

Weights are a torchvision weights name (``"IMAGENET1K_V1"`` or ``"ResNet18_Weights.IMAGENET1K_V1"``,
found in the local torch cache as users of air-gapped plants pre-seed it) or a local
``.pth`` / ``.safetensors`` state dict. Files are read with ``weights_only=True``: loading a
weights file never runs code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from inspection.card import MAP_ARCHS
from inspection.defectnet import DefectNet
from inspection.errors import ModelRegistryError
from inspection.segdec import SegDecNet

ModelFactory = Callable[..., nn.Module]


class WithSoftmax(nn.Module):
    """Both backends return probabilities, so parity is checked (and decisions made) on the same numbers."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def served_module(model: nn.Module) -> nn.Module:
    """What is exported and served: probabilities, and for a map network the map's too."""
    from inspection.segdec import WithProbsAndMap

    return WithProbsAndMap(model) if isinstance(model, SegDecNet) else WithSoftmax(model)


_REGISTRY: dict[str, tuple[ModelFactory, type | None]] = {}


def register_model(name: str, weights_enum: type | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Add an architecture; ``weights_enum`` is its torchvision weights enum, None when it has none."""

    def deco(fn: ModelFactory) -> ModelFactory:
        _REGISTRY[name] = (fn, weights_enum)
        return fn

    return deco


register_model("mobilenet_v3_small", tvm.MobileNet_V3_Small_Weights)(tvm.mobilenet_v3_small)
register_model("mobilenet_v3_large", tvm.MobileNet_V3_Large_Weights)(tvm.mobilenet_v3_large)
register_model("resnet18", tvm.ResNet18_Weights)(tvm.resnet18)
register_model("resnet50", tvm.ResNet50_Weights)(tvm.resnet50)
register_model("efficientnet_b0", tvm.EfficientNet_B0_Weights)(tvm.efficientnet_b0)
register_model("defectnet")(DefectNet)  # ours, for from-scratch training on CPUs (see defectnet.py)
register_model("segdec")(SegDecNet)  # ours: a defect map and a decision from it (see segdec.py)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def _lookup(name: str) -> tuple[ModelFactory, type | None]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelRegistryError(
            f"unknown architecture {name!r}; choose one of: {', '.join(list_models())}"
        ) from None


def _replace_module(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def _set_num_classes(model: nn.Module, num_classes: int) -> None:
    """Swap the last Linear layer (the classifier head of every registered family)."""
    name, last = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    if last.out_features != num_classes:
        _replace_module(model, name, nn.Linear(last.in_features, num_classes))


def _set_in_channels(model: nn.Module, in_channels: int) -> None:
    """Adapt the stem convolution; RGB filters are summed so pretrained features survive (timm's trick)."""
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    with torch.no_grad():
        if in_channels == 1:
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _replace_module(model, name, new)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelRegistryError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or pickled-object file: refuse, never execute
        raise ModelRegistryError(f"cannot read weights file {path} safely: {exc}") from None
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelRegistryError(f"{path} does not hold a state dict")
    return state


def _torchvision_weights(enum: type | None, spec: str):
    if enum is None:
        raise ModelRegistryError(f"this architecture has no torchvision weights; {spec!r} must be a local "
                                 ".pth or .safetensors file")
    member = spec.rsplit(".", 1)[-1]
    if member == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[member]
    except KeyError:
        options = ", ".join(w.name for w in enum)
        raise ModelRegistryError(f"unknown weights {spec!r}; this architecture has: {options}") from None


def create_model(
    name: str,
    *,
    num_classes: int,
    weights: str | Path | None = None,
    in_channels: int = 3,
    map_channels: int = 1,
    defect: Sequence[bool] | None = None,
) -> nn.Module:
    """Build a registered architecture with a ``num_classes`` head and ``in_channels`` input
    (and, for a map architecture, ``map_channels`` map channels, one per defect class, and
    ``defect``: which classes are defects).

    ``weights`` may be None (random init), a torchvision weights name, or a local file with
    an ImageNet (or any same-architecture) state dict; the head is replaced after loading.
    """
    factory, enum = _lookup(name)
    if num_classes < 1:
        raise ModelRegistryError("num_classes must be at least 1")
    if name in MAP_ARCHS:
        if weights is not None:
            raise ModelRegistryError(f"{name} trains from scratch: it has no pretrained weights")
        return factory(num_classes=num_classes, in_channels=in_channels, map_channels=max(1, map_channels),
                       defect=defect)
    if weights is None:
        model = factory(weights=None)
    elif isinstance(weights, Path) or Path(str(weights)).suffix in (".pth", ".pt", ".safetensors"):
        state = _read_state_dict(Path(weights))
        head = [v for k, v in state.items() if v.ndim == 2][-1:]  # classifier weight
        model = factory(weights=None, num_classes=head[0].shape[0] if head else 1000)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelRegistryError(f"{weights} does not fit {name}: {str(exc)[:300]}") from None
    else:
        wt = _torchvision_weights(enum, str(weights))
        try:
            model = factory(weights=wt, progress=False)
        except Exception as exc:  # no network at run time: say where the file must be
            raise ModelRegistryError(
                f"cannot load {wt} ({exc.__class__.__name__}); put the file in the torch cache "
                f"({torch.hub.get_dir()}/checkpoints) or pass a local .pth path"
            ) from None
    _set_num_classes(model, num_classes)
    _set_in_channels(model, in_channels)
    return model
