"""The model card: everything a caller needs to use a trained model (GUIDE §3)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from inspection.errors import BundleError
from inspection.preprocess import PreprocessConfig
from inspection.quality import QualityError, QualityLimits

CARD_FORMAT = 1
MAP_ARCHS = ("segdec",)  # architectures whose output includes a defect map (one channel per map class)
# the class of a defect synthesized on a good image in training (training/synth_defects.py); to a model
# that has it, a defect of a type it was never shown is an anomaly too
ANOMALY = "anomaly"


@dataclass(frozen=True)
class Thresholds:
    """Fail when defect_score >= fail; review when review <= defect_score < fail.

    ``review`` None means no review band. Both are probabilities in [0, 1].
    """

    fail: float = 0.5
    review: float | None = None

    @property
    def region(self) -> float:
        """A defect-map cell at or above this belongs to a reported region: the lowest score that is
        not a pass, so every fail or review verdict of a map model shows where."""
        return self.fail if self.review is None else self.review

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail <= 1.0:
            raise BundleError(f"fail threshold {self.fail} must lie in [0, 1]")
        if self.review is not None and not 0.0 <= self.review <= self.fail:
            raise BundleError(f"review threshold {self.review} must lie in [0, fail={self.fail}]")


def map_classes(classes: Sequence[str], pass_classes: Sequence[str]) -> tuple[str, ...]:
    """The class of each defect-map channel: the defect classes (every class when none passes)."""
    return tuple(c for c in classes if c not in pass_classes) or tuple(classes)


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    arch: str
    classes: tuple[str, ...]
    pass_classes: tuple[str, ...]
    preprocess: PreprocessConfig
    thresholds: Thresholds = field(default_factory=Thresholds)
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset_fingerprint: str | None = None
    parent_version: str | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    software_version: str = ""
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    extra: dict[str, Any] = field(default_factory=dict)
    quality: QualityLimits | None = None  # image-quality gate limits learned in training; None: no gate
    format: int = CARD_FORMAT

    def __post_init__(self) -> None:
        if len(self.classes) < 2 and not self.pass_classes:
            raise BundleError("a model card needs at least two classes")
        if len(set(self.classes)) != len(self.classes):
            raise BundleError(f"class names repeat: {self.classes}")
        unknown = set(self.pass_classes) - set(self.classes)
        if unknown:
            raise BundleError(f"pass classes {sorted(unknown)} are not among the classes {self.classes}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def defect_classes(self) -> tuple[str, ...]:
        return tuple(c for c in self.classes if c not in self.pass_classes)

    @property
    def good_only(self) -> dict[str, Any] | None:
        """How a model trained without real defects was made and calibrated (None: it saw real ones)."""
        return self.extra.get("good_only")

    @property
    def has_map(self) -> bool:
        return self.arch in MAP_ARCHS

    @property
    def map_classes(self) -> tuple[str, ...]:
        return map_classes(self.classes, self.pass_classes)

    def with_(self, **changes: Any) -> ModelCard:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelCard:
        try:
            if raw.get("format", CARD_FORMAT) > CARD_FORMAT:
                raise BundleError(
                    f"card format {raw['format']} is newer than this defectscope understands "
                    f"({CARD_FORMAT}): upgrade defectscope"
                )
            pre = dict(raw["preprocess"])
            if pre.get("window") is None:  # cards of 0.x wrote the never-used native fixture window as null
                pre.pop("window", None)
            for key in ("input_size", "mean", "std", "roi"):
                if pre.get(key) is not None:
                    pre[key] = tuple(pre[key])
            fields = dict(raw)
            fields["preprocess"] = PreprocessConfig(**pre)
            fields["thresholds"] = Thresholds(**raw.get("thresholds", {}))
            fields["classes"] = tuple(raw["classes"])
            fields["pass_classes"] = tuple(raw.get("pass_classes", ()))
            if raw.get("quality") is not None:  # cards written before the gate existed have none
                fields["quality"] = QualityLimits.from_dict(raw["quality"])
            return cls(**fields)
        except BundleError:
            raise
        except QualityError as exc:
            raise BundleError(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"card.json is invalid ({exc.__class__.__name__}: {exc})") from None
