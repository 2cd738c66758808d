"""The frozen golden set every challenger is compared on, and pass/fail figures of a bundle on it.

The golden set is a split (or all) of a dataset folder the engineer names. Its fingerprint
(sha256, label, split of every row) is recorded with the figures in the registry, and retraining
refuses when it changed (or when a file's bytes no longer match its manifest sha256), so two
models are only ever compared on the same images. Images go through the served model's own
predictor, quality gate included (as ``evaluate`` does), and a golden label counts as a defect
when it is not a pass class, so a champion that lacks a newer defect class is still scored on it:
exactly the escape that class causes on the line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.layout import Dataset, DatasetError
from inspection.bundle import load_bundle
from inspection.predictor import Predictor
from training.metrics import pass_fail_outcomes, roc_auc
from training.scoring import score_samples


class GoldenSetError(DatasetError):
    """The golden set is missing, changed since the champion was scored on it, or overlaps training data."""


@dataclass(frozen=True)
class GoldenSet:
    dataset: Dataset  # only the golden rows, split renamed "golden"
    fingerprint: str

    @property
    def shas(self) -> frozenset[str]:
        return frozenset(s.sha256 for s in self.dataset.samples)


def load_golden(root: str | Path, split: str = "test") -> GoldenSet:
    """The golden rows of ``root`` (``split`` or "all"), each file checked against its manifest sha256."""
    from dataclasses import replace

    ds = Dataset.load(root)
    rows = ds.samples if split == "all" else ds.split(split)
    if not rows:
        raise GoldenSetError(f"{ds.root} has no images in split {split!r} to use as the golden set")
    if not any(s.label in ds.info.pass_classes for s in rows) or all(s.label in ds.info.pass_classes for s in rows):
        raise GoldenSetError("the golden set needs both good and defective images to compare escape and "
                             "false-reject rates")
    for s in rows:
        try:
            actual = hashlib.sha256(ds.abspath(s).read_bytes()).hexdigest()
        except OSError as exc:
            raise GoldenSetError(f"golden image {s.path} is unreadable: {exc.strerror or exc}") from None
        if not s.sha256 or actual != s.sha256:
            raise GoldenSetError(f"golden image {s.path} does not match the sha256 in its manifest: the golden set "
                                 "was changed; restore it (it must stay frozen)")
    golden = ds.with_samples([replace(s, split="golden") for s in rows])
    return GoldenSet(golden, golden.fingerprint())


def score_on_golden(bundle_path: str | Path, golden: GoldenSet, *, threads: int = 2) -> dict[str, Any]:
    """Pass/fail figures of the bundle as served: overall and, per golden defect class, the detection rate."""
    bundle = load_bundle(bundle_path)
    card = bundle.card
    ds = golden.dataset
    scored = score_samples(Predictor(bundle, threads=threads, batch_size=64), ds, ds.samples, threads=threads)
    if scored.skipped:
        raise GoldenSetError(f"golden images could not be read: {scored.skipped[:3]}")
    scores = scored.defect_scores(card.classes, card.pass_classes)
    is_defect = scored.is_defect(ds.info.pass_classes)
    th = card.thresholds
    pf = {**pass_fail_outcomes(scored.outcomes, is_defect), "roc_auc": roc_auc(scores, is_defect)}
    caught = scored.outcomes != "pass"  # failed, sent to a person, or refused by the gate: not an escape
    per_class = {}
    labels = np.array(scored.labels, dtype=object)
    for c in ds.info.classes:
        mask = labels == c
        if mask.any() and c not in ds.info.pass_classes:
            per_class[c] = {"n": int(mask.sum()), "recall": float(caught[mask].mean()),
                            "escapes": int((~caught[mask]).sum()), "known_to_model": c in card.classes}
    return {"version": card.version, "n": len(scored), "golden_fingerprint": golden.fingerprint,
            "fail_threshold": th.fail, "review_threshold": th.review, **pf, "per_class": per_class,
            "scores": scores.round(5).tolist(), "is_defect": is_defect.tolist()}
