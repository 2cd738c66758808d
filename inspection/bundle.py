"""Load model bundles: weights.safetensors + card.json + model.onnx (GUIDE §3); writing them is training's.

Loading never unpickles (safetensors and JSON only) and refuses a bundle whose files do not
match the hashes in its card. Nothing here imports torch until a PyTorch model is asked for:
a station serving the ONNX file never loads it. ``check_weights`` (torch) proves the weights
fit the card's architecture; the registry and the torch backend run it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspection.card import ModelCard
from inspection.errors import BundleError, ModelRegistryError

if TYPE_CHECKING:
    from torch import nn

WEIGHTS = "weights.safetensors"
CARD = "card.json"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"  # written by `defectscope export --int8` only when it agrees with the float model


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(card: ModelCard, weights: str | Path | None = None) -> nn.Module:
    """The card's architecture with its class count and input channels (untrained unless ``weights``)."""
    from inspection.decision import defect_mask
    from inspection.models import create_model

    return create_model(card.arch, num_classes=card.num_classes, weights=weights,
                        in_channels=card.preprocess.channels, map_channels=len(card.map_classes),
                        defect=defect_mask(card.classes, card.pass_classes).tolist())


@dataclass(frozen=True)
class Bundle:
    path: Path
    card: ModelCard

    @property
    def onnx_path(self) -> Path | None:
        p = self.path / ONNX
        return p if p.is_file() else None

    @property
    def int8_path(self) -> Path | None:
        """The quantized graph, when it passed its gate (the card records it) and is here."""
        p = self.path / ONNX_INT8
        return p if p.is_file() and ONNX_INT8 in self.card.files and self.card.extra.get("int8") else None

    def state_dict(self) -> dict[str, Any]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(self.path / WEIGHTS))
        except (SafetensorError, OSError) as exc:
            raise BundleError(f"{self.path / WEIGHTS} is unreadable: {exc}") from None

    def build_torch_model(self) -> nn.Module:
        """The trained network in eval mode, weights loaded strictly."""
        model = build_model(self.card)
        try:
            model.load_state_dict(self.state_dict())
        except RuntimeError as exc:
            raise BundleError(f"weights do not fit the card's architecture: {str(exc)[:300]}") from None
        return model.eval()


def check_weights(bundle: Bundle) -> None:
    """Refuse weights whose tensors do not match the card's architecture (shapes only, no memory)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(bundle.path / WEIGHTS), framework="numpy") as fh:
            state = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{bundle.path / WEIGHTS} is unreadable: {exc}") from None
    import torch

    card = bundle.card
    try:
        with torch.device("meta"):  # architecture only: no memory, no init cost
            expected = {k: tuple(v.shape) for k, v in build_model(card).state_dict().items()}
    except ModelRegistryError as exc:
        raise BundleError(f"card names an unusable architecture: {exc}") from None
    missing = sorted(set(expected) - set(state))
    wrong = [k for k in expected if k in state and state[k] != expected[k]]
    if missing or wrong or set(state) - set(expected):
        detail = f"missing {missing[:3]}" if missing else f"shape of {wrong[:3]}"
        raise BundleError(
            f"weights do not match the card ({card.arch}, {card.num_classes} classes, "
            f"{card.preprocess.channels} channels): {detail}. Re-export the bundle."
        )


def read_card(path: Path) -> ModelCard:
    if not (path / CARD).is_file():
        raise BundleError(f"{path} is not a model bundle (no {CARD}); train one with 'defectscope train'")
    try:
        return ModelCard.from_dict(json.loads((path / CARD).read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path / CARD} is not valid JSON: {exc}") from None


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read and check a bundle folder. ``verify`` checks every file against the hashes in the card."""
    path = Path(path)
    card = read_card(path)
    if not (path / WEIGHTS).is_file():
        raise BundleError(f"{path} has no {WEIGHTS}")
    if verify:
        for name, digest in card.files.items():
            f = path / name
            if not f.is_file() or sha256_file(f) != digest:
                raise BundleError(f"{f} is missing or does not match the hash in {CARD}: the bundle is corrupt")
    return Bundle(path, card)
