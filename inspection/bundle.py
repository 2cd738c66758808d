"""Save and load model bundles: weights.safetensors + card.json + model.onnx (GUIDE §3).

Loading never unpickles (safetensors and JSON only) and refuses a bundle whose files do not
match the hashes in its card, or whose weights do not fit the architecture the card names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from inspection.atomic import atomic_dir
from inspection.card import ModelCard
from inspection.errors import BundleError, ModelRegistryError
from inspection.models import create_model
from inspection.onnx_export import export_onnx

WEIGHTS = "weights.safetensors"
CARD = "card.json"
ONNX = "model.onnx"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(card: ModelCard, weights: str | Path | None = None) -> nn.Module:
    """The card's architecture with its class count and input channels."""
    return create_model(
        card.arch, num_classes=card.num_classes, weights=weights,
        in_channels=card.preprocess.channels,
    )


@dataclass(frozen=True)
class Bundle:
    path: Path
    card: ModelCard

    @property
    def onnx_path(self) -> Path | None:
        p = self.path / ONNX
        return p if p.is_file() else None

    def state_dict(self) -> dict[str, torch.Tensor]:
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


def save_bundle(
    path: str | Path,
    model: nn.Module,
    card: ModelCard,
    *,
    sample: np.ndarray | None = None,
    export: bool = True,
) -> Bundle:
    """Write a bundle atomically; ``sample`` (NCHW float32) feeds the ONNX parity check.

    An empty ``card.version`` becomes the first 12 hex digits of the weights' sha256, so a
    version names exactly one set of weights.
    """
    from inspection import __version__

    path = Path(path)
    with atomic_dir(path) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS))
        files = {WEIGHTS: _sha256(tmp / WEIGHTS)}
        extra = dict(card.extra)
        if export:
            if sample is None:
                h, w = card.preprocess.input_size
                sample = np.random.default_rng(0).standard_normal((2, card.preprocess.channels, h, w))
            data, diff = export_onnx(model, sample)
            (tmp / ONNX).write_bytes(data)
            files[ONNX] = _sha256(tmp / ONNX)
            extra["onnx_parity_max_abs_diff"] = diff
        card = card.with_(
            files=files, extra=extra, software_version=__version__,
            version=card.version or files[WEIGHTS][:12],
        )
        (tmp / CARD).write_text(card.to_json())
    return Bundle(path, card)


def _check_shapes(card: ModelCard, state: dict[str, tuple[int, ...]]) -> None:
    with torch.device("meta"):  # architecture only: no memory, no init cost
        expected = {k: tuple(v.shape) for k, v in build_model(card).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    wrong = [k for k in expected if k in state and state[k] != expected[k]]
    if missing or wrong or set(state) - set(expected):
        detail = f"missing {missing[:3]}" if missing else f"shape of {wrong[:3]}"
        raise BundleError(
            f"weights do not match the card ({card.arch}, {card.num_classes} classes, "
            f"{card.preprocess.channels} channels): {detail}. Re-export the bundle."
        )


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read and check a bundle folder. ``verify`` checks file hashes and weight shapes."""
    path = Path(path)
    if not (path / CARD).is_file():
        raise BundleError(f"{path} is not a model bundle (no {CARD}); train one with 'defectscope train'")
    try:
        card = ModelCard.from_dict(json.loads((path / CARD).read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path / CARD} is not valid JSON: {exc}") from None
    if not (path / WEIGHTS).is_file():
        raise BundleError(f"{path} has no {WEIGHTS}")
    if verify:
        for name, digest in card.files.items():
            f = path / name
            if not f.is_file() or _sha256(f) != digest:
                raise BundleError(f"{f} is missing or does not match the hash in {CARD}: the bundle is corrupt")
        from safetensors import safe_open

        try:
            with safe_open(str(path / WEIGHTS), framework="pt") as fh:
                shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as exc:
            raise BundleError(f"{path / WEIGHTS} is unreadable: {exc}") from None
        try:
            _check_shapes(card, shapes)
        except ModelRegistryError as exc:
            raise BundleError(f"card names an unusable architecture: {exc}") from None
    return Bundle(path, card)
