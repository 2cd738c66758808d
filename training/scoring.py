"""A labelled split through the served model's own predictor: what evaluation, calibration and the
golden-set comparison measure, so their figures are what the line would do (quality gate included).

Files are decoded in threads (``Predictor.load``) and inferred in batches (``Predictor.run``);
unreadable files are listed, not fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from datasets.layout import Dataset, Sample
from inspection.decision import defect_mask, defect_scores
from inspection.predictor import Item, Predictor
from training.calibration import LabelledScores


@dataclass(frozen=True)
class Scored:
    """Decided items of a split, in manifest order, with their dataset labels."""

    items: list[Item]
    labels: list[str]
    skipped: list[str] = field(default_factory=list)  # "path: reason" for files that could not be inspected

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paths(self) -> list[str]:
        return [it.source for it in self.items]

    @property
    def probs(self) -> np.ndarray:
        return np.stack([it.probs for it in self.items]) if self.items else np.zeros((0, 0), np.float32)

    @property
    def outcomes(self) -> np.ndarray:
        return np.array([it.verdict.outcome.value for it in self.items], dtype=object)  # type: ignore[union-attr]

    @property
    def gate_ok(self) -> np.ndarray:
        """Per item: False where the quality gate refused the frame."""
        return np.array([it.quality is None or it.quality.ok for it in self.items], dtype=bool)

    def label_indices(self, classes: Sequence[str]) -> np.ndarray:
        return np.array([list(classes).index(lb) for lb in self.labels], dtype=np.int64)

    def is_defect(self, pass_classes: Sequence[str]) -> np.ndarray:
        """A label counts as a defect when it is not a pass class (one the model does not know too)."""
        return np.array([lb not in pass_classes for lb in self.labels], dtype=bool)

    def defect_scores(self, classes: Sequence[str], pass_classes: Sequence[str]) -> np.ndarray:
        return defect_scores(self.probs, defect_mask(classes, pass_classes))

    def labelled(self, classes: Sequence[str], pass_classes: Sequence[str], source: str) -> LabelledScores:
        """Defect scores and labels, to calibrate on."""
        return LabelledScores(self.defect_scores(classes, pass_classes), self.is_defect(pass_classes), source)


def score_samples(predictor: Predictor, dataset: Dataset, samples: Sequence[Sample], *, threads: int = 2) -> Scored:
    def load(sample: Sample) -> Item:
        try:
            data = dataset.abspath(sample).read_bytes()
        except OSError as exc:
            from inspection.errors import ImageDecodeError

            return Item(sample.path, error=ImageDecodeError(f"cannot read it: {exc.strerror or exc}"))
        return predictor.load(data, source=sample.path)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        loaded = list(pool.map(load, samples))
    decided = predictor.run(loaded)
    items, labels, skipped = [], [], []
    for sample, item in zip(samples, decided, strict=True):
        if item.verdict is None:
            skipped.append(f"{sample.path}: {item.error}")
            continue
        items.append(item)
        labels.append(sample.label)
    return Scored(items, labels, skipped)
