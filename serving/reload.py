"""Resolving, loading and vetting a model for the service (at start and for a hot reload).

A new model is loaded and checked completely on a worker thread while the old one keeps
serving: bundle hashes and weight shapes (load_bundle), the inference backend built, warm-up
inferences at every batch size the batcher uses with finite probabilities of the right shape,
and a card the decision rule can use. Only then does the service swap it in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from inspection.bundle import load_bundle
from inspection.card import ModelCard
from inspection.errors import BundleError, DefectscopeError, ModelRegistryError
from inspection.predictor import Predictor
from inspection.thread_layout import frame_cost, planned_predictor
from registry import ModelRegistry
from serving.config import Settings
from serving.schemas import ModelRef

log = logging.getLogger("defectscope.serving")


class ReloadError(DefectscopeError):
    """The requested model cannot be served; ``status``/``code`` say how the API answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class ReloadRequest(BaseModel):
    version: str | None = Field(None, max_length=64, description="A registry version; default: the champion "
                                "of the service's line (or the --model bundle again).")
    force: bool = Field(False, description="Swap even when the version is the same or the pass classes change.")


class ReloadOutcome(BaseModel):
    previous: ModelRef | None
    model: ModelRef = Field(description="The model serving now.")
    changed: bool = Field(description="False: the requested model was already serving; nothing was swapped.")
    source: str
    load_ms: float
    verify_ms: float = Field(description="Warm-up inferences that vetted the new model before the swap.")
    total_ms: float
    notes: list[str] = Field(default_factory=list, description="For example classes added or removed.")


@dataclass(frozen=True)
class Candidate:
    predictor: Predictor
    source: str  # "registry <root> line <line> @<version>" or the bundle path
    load_ms: float
    verify_ms: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def resolve(settings: Settings, version: str | None = None, force: bool = False) -> tuple[Path, str]:
    """The bundle to serve: ``version`` from the registry, else the line's champion, else settings.model."""
    if version is not None or (settings.model is None and settings.registry is not None):
        if settings.registry is None:
            raise ReloadError(409, "no_registry", "asking for a version needs a model registry: start the service "
                              "with --registry (DEFECTSCOPE_REGISTRY)")
        reg = ModelRegistry(settings.registry)
        try:
            if version is not None:
                path = reg.path_of(version)
                if reg.status_of(version, settings.line) == "rejected" and not force:
                    raise ReloadError(409, "version_rejected", f"version {version} was rejected for line "
                                      f"{settings.line!r} (see 'defectscope models show {version}'): promote it "
                                      "first, or send force=true to serve it anyway")
                return path, f"registry version {version}"
            return reg.champion(settings.line), f"registry champion of line {settings.line!r}"
        except ModelRegistryError as exc:
            status = 404 if version is not None and "is not in" in str(exc) else 409
            raise ReloadError(status, "unknown_version" if status == 404 else "no_champion", str(exc)) from None
    if settings.model is None:
        raise ReloadError(409, "no_model", "no model given: pass --model BUNDLE or --registry REGISTRY")
    return settings.model, f"bundle {settings.model}"


def record_served(settings: Settings, version: str, forced: bool) -> None:
    """Say in the registry that this service now serves ``version`` (audit trail of reloads)."""
    if settings.registry is None:
        return
    try:
        ModelRegistry(settings.registry).record_event(
            settings.line, "serve", version, f"loaded by the service on {settings.host}:{settings.port}"
            + (" (forced)" if forced else ""))
    except (DefectscopeError, OSError) as exc:  # the registry is read-only or busy: serving goes on
        log.warning("could not record the reload in the registry: %s", exc)


def open_predictor(settings: Settings, path: Path) -> Predictor:
    """The bundle's predictor with the configured inference threads, or the thread plan's for this
    machine and this model (measured again for every model: a heavier one wants more)."""
    kwargs = {"backend": settings.backend, "batch_size": settings.max_batch_size, "max_pixels": settings.max_pixels}
    bundle = load_bundle(path)
    if settings.threads is not None:
        return Predictor(bundle, threads=settings.threads, **kwargs)
    w, h = (int(v) for v in settings.frame_size.split("x"))
    predictor, layout = planned_predictor(bundle, lambda p: frame_cost(p, (h, w)), **kwargs)
    if layout is not None:
        layout = replace(layout, decode=settings.decode_threads or layout.decode)  # what the service runs
        log.info("thread plan for %s on %s frames: %s", path.name, settings.frame_size, layout.describe())
    return predictor


def warm_up(predictor: Predictor, max_batch_size: int) -> None:
    """First calls allocate and plan: pay that before the first part, at every batch size seen.

    Also the last check of a new model: the output must be finite probabilities, one row per image.
    """
    card = predictor.card
    pre = card.preprocess
    h, w = pre.input_size
    for n in sorted({1, max_batch_size}):
        out = predictor.infer(np.zeros((n, pre.channels, h, w), np.float32))
        probs = np.asarray(out.probs)
        if probs.shape != (n, card.num_classes) or not np.all(np.isfinite(probs)) or \
                not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            raise BundleError(f"the model answers {probs.shape} outputs that are not probabilities over its "
                              f"{card.num_classes} classes: re-export the bundle")
        if card.has_map and (out.maps is None or out.maps.shape[:2] != (n, len(card.map_classes))
                             or not np.all((out.maps >= 0) & (out.maps <= 1))):
            raise BundleError(f"the model's defect map is missing or not {len(card.map_classes)} channels of "
                              "probabilities: re-export the bundle")


def compatibility(old: ModelCard | None, new: ModelCard, force: bool) -> tuple[str, ...]:
    """Refuse what would change verdicts' meaning on the line silently; return notes on the rest."""
    if not new.pass_classes or not new.defect_classes:
        raise ReloadError(409, "incompatible_model", f"{new.name}@{new.version} has no pass class or no defect "
                          "class, so it cannot say pass or fail")
    if old is None:
        return ()
    if set(old.pass_classes) != set(new.pass_classes) and not force:
        raise ReloadError(409, "incompatible_model", f"the pass classes change from {list(old.pass_classes)} to "
                          f"{list(new.pass_classes)}: that changes what 'pass' means on the line. Send force=true "
                          "if this is intended")
    notes = []
    added = [c for c in new.classes if c not in old.classes]
    removed = [c for c in old.classes if c not in new.classes]
    if added:
        notes.append(f"classes added: {', '.join(added)}")
    if removed:
        notes.append(f"classes removed: {', '.join(removed)}")
    return tuple(notes)


def prepare(settings: Settings, current: ModelCard | None, version: str | None = None,
            force: bool = False) -> Candidate:
    """Load and vet the model to serve next (runs on a worker thread; the old model keeps serving)."""
    path, source = resolve(settings, version, force)
    t0 = time.perf_counter()
    try:
        predictor = open_predictor(settings, path)
        load_ms = (time.perf_counter() - t0) * 1000.0
        notes = compatibility(current, predictor.card, force)
        t1 = time.perf_counter()
        warm_up(predictor, settings.max_batch_size)
    except BundleError as exc:
        raise ReloadError(409, "bundle_invalid", f"{source} was refused, the current model keeps serving: {exc}") \
            from None
    except ModelRegistryError as exc:  # an unknown architecture on the card
        raise ReloadError(409, "bundle_invalid", f"{source} was refused, the current model keeps serving: {exc}") \
            from None
    except ReloadError:
        raise
    except Exception as exc:  # a backend that cannot build this graph (onnxruntime, torch): refuse, keep serving
        log.exception("loading %s failed", source)
        raise ReloadError(409, "bundle_invalid", f"{source} was refused, the current model keeps serving: "
                          f"{exc.__class__.__name__}: {str(exc)[:300]}") from None
    return Candidate(predictor, f"{source} @{predictor.card.version}", load_ms, (time.perf_counter() - t1) * 1000.0,
                     notes)
