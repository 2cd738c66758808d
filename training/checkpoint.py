"""Checkpoints for resuming: written atomically, read with ``weights_only=True`` (never unpickled blindly)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from inspection.atomic import write_bytes_atomic
from inspection.errors import DefectscopeError

LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(DefectscopeError):
    """A checkpoint cannot be read or belongs to another run."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """A crash mid-write leaves the previous checkpoint intact (temp file + rename)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign or pickled-object file: refuse, never execute
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({exc.__class__.__name__}); "
            "delete it or start over with --restart"
        ) from None


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict of the bare model (unwrapped from DDP), on the CPU."""
    bare = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in bare.state_dict().items()}


def save_last(path: Path, fit: Any, progress: dict[str, Any], fingerprint: str, classes: tuple[str, ...]) -> None:
    """Everything needed to resume exactly after this epoch (``fit``: training.fitting.Fit)."""
    save_checkpoint(path, {**progress, "model": cpu_state(fit.model), "optimizer": fit.optimizer.state_dict(),
                           "scheduler": fit.scheduler.state_dict(), "fingerprint": fingerprint,
                           "scaler": fit.scaler.state_dict() if fit.scaler is not None else None,
                           "mask_head": cpu_state(fit.trained.head) if hasattr(fit.trained, "head") else None,
                           "classes": list(classes)})


def restore_last(path: Path, fit: Any, fingerprint: str, classes: tuple[str, ...]) -> dict[str, Any]:
    """Load the last checkpoint into ``fit``; returns the progress it carried."""
    ck = load_checkpoint(path)
    if ck.get("fingerprint") != fingerprint or tuple(ck.get("classes", ())) != classes:
        raise CheckpointError(f"{path} was trained on other data (the dataset changed): pass --restart")
    fit.model.load_state_dict(ck["model"])
    if hasattr(fit.trained, "head") and ck.get("mask_head"):
        fit.trained.head.load_state_dict(ck["mask_head"])
    fit.optimizer.load_state_dict(ck["optimizer"])
    fit.scheduler.load_state_dict(ck["scheduler"])
    if fit.scaler is not None and ck.get("scaler"):
        fit.scaler.load_state_dict(ck["scaler"])
    return ck
