"""Logged verdicts with their process parameters -> a typed table a model can learn from, and what was left out.

Stations send what their PLC has, so columns are untidy: a parameter missing on some parts, a
number sent as text, a sensor stuck at one value, a serial number sent as a "parameter". Each
column is typed from its values (numeric when nearly all values are numbers, categorical
otherwise) and dropped with a note when it cannot say anything: mostly missing, constant, or a
category with so many levels that it identifies parts rather than settings.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_MISSING = 0.5  # a column missing on more parts than this is dropped
NUMERIC_SHARE = 0.95  # a column is numeric when this share of its present values are numbers
MAX_LEVELS = 30  # more categories than this: an identifier, not a setting
MISSING_LEVEL = "(missing)"
MAX_COLUMNS = 64


@dataclass(frozen=True)
class PartRecord:
    """One logged verdict as the analysis sees it."""

    ts: float
    station: str | None
    verdict: str  # pass / fail / review
    label: str
    process: dict[str, Any] | None
    model_version: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PartRecord:
        """From a verdict log row (``serving.verdict_store.VerdictQueries.for_analysis``)."""
        return cls(row["ts"], row["station"], row["verdict"], row["label"], row["process"], row.get("model_version"))


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "numeric" or "categorical"
    levels: tuple[str, ...] = ()  # categorical: the code of level i is i
    missing: int = 0

    def describe(self, values: np.ndarray) -> dict[str, Any]:
        present = values[~np.isnan(values)]
        if self.kind == "numeric":
            lo, hi = (float(np.min(present)), float(np.max(present))) if present.size else (math.nan, math.nan)
            return {"name": self.name, "kind": self.kind, "missing": self.missing, "min": lo, "max": hi}
        return {"name": self.name, "kind": self.kind, "missing": self.missing, "levels": list(self.levels)}


@dataclass
class ProcessTable:
    """Parts x parameters as floats (categorical columns hold level codes; NaN is missing)."""

    columns: list[Column]
    X: np.ndarray
    records: list[PartRecord]
    notes: list[str] = field(default_factory=list)
    without_process: int = 0  # verdicts in the range that carried no parameters at all

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def categorical(self) -> np.ndarray:
        return np.array([c.kind == "categorical" for c in self.columns], bool)

    def column(self, name: str) -> int:
        return self.names.index(name)

    def outcome(self, *, count_review: bool = False, label: str | None = None) -> np.ndarray:
        """1 where a part failed (or, with ``label``, failed as that defect class)."""
        bad = ("fail", "review") if count_review else ("fail",)
        return np.array([r.verdict in bad and (label is None or r.label == label) for r in self.records], np.int64)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            x = float(v.strip())
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def _text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)[:64]


def _typed(name: str, raw: Sequence[Any], notes: list[str]) -> tuple[Column, np.ndarray] | None:
    n = len(raw)
    present = [v for v in raw if v is not None and v != ""]
    missing = n - len(present)
    if missing > MAX_MISSING * n:
        notes.append(f"{name}: left out, missing on {missing} of {n} parts")
        return None
    nums = [_number(v) for v in present]
    numeric = sum(x is not None for x in nums)
    if present and numeric >= NUMERIC_SHARE * len(present):
        values = np.array([math.nan if x is None else x for x in (_number(v) for v in raw)], np.float64)
        bad = len(present) - numeric
        if bad:
            examples = sorted({_text(v) for v, x in zip(present, nums, strict=True) if x is None})[:3]
            notes.append(f"{name}: {bad} values were not numbers ({', '.join(map(repr, examples))}) and count as "
                         "missing")
        missing = int(np.isnan(values).sum())
        if np.unique(values[~np.isnan(values)]).size < 2:
            notes.append(f"{name}: left out, the same value on every part (nothing to learn from)")
            return None
        return Column(name, "numeric", missing=missing), values
    counts = Counter(_text(v) for v in present)
    if len(counts) < 2:
        notes.append(f"{name}: left out, the same value on every part (nothing to learn from)")
        return None
    if len(counts) > MAX_LEVELS or len(counts) > 0.5 * len(present):
        notes.append(f"{name}: left out, {len(counts)} different values look like an identifier, not a setting")
        return None
    levels = tuple(sorted(counts))
    code = {lv: i for i, lv in enumerate(levels)}
    values = np.array([math.nan if v is None or v == "" else code[_text(v)] for v in raw], np.float64)
    return Column(name, "categorical", levels=levels, missing=missing), values


def build_table(records: Iterable[PartRecord]) -> ProcessTable:
    """The parts that carry process parameters, typed; verdicts without any are counted, not used."""
    all_records = list(records)
    with_process = [r for r in all_records if r.process]
    notes: list[str] = []
    seen = Counter(k for r in with_process for k in r.process)  # type: ignore[union-attr]
    names = [k for k, _ in seen.most_common(MAX_COLUMNS)]
    if len(seen) > MAX_COLUMNS:  # a station sending new keys on every part must not make a table of thousands
        notes.append(f"{len(seen) - MAX_COLUMNS} more parameter names, each on fewer parts, were left out "
                     f"(the {MAX_COLUMNS} most frequent are analysed)")
    columns, arrays = [], []
    for name in names:
        typed = _typed(name, [r.process.get(name) for r in with_process], notes)  # type: ignore[union-attr]
        if typed is not None:
            columns.append(typed[0])
            arrays.append(typed[1])
    X = np.column_stack(arrays) if arrays else np.empty((len(with_process), 0))
    return ProcessTable(columns, X, with_process, notes, len(all_records) - len(with_process))


def level_name(col: Column, code: float) -> str:
    return MISSING_LEVEL if math.isnan(code) else col.levels[int(code)]
