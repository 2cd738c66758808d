"""Stratified train/val/test assignment that is stable under re-runs and additions.

Samples that already have a split keep it; new ones are taken per label in the order of a
hash of their content, each going to the split furthest below its target share. So a re-run
changes nothing, adding images never moves old ones (a model's test set stays its test set),
and every label is spread over the splits in the asked proportions. Identical files (same
sha256) always share a split, so a duplicate can never leak from train into test.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace

from datasets.layout import SPLITS, DatasetError, Sample

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DatasetError(f"split fractions {tuple(fractions)} are invalid: give three shares (train, val, test) "
                           "that are not negative, e.g. 0.7,0.15,0.15")
    total = float(sum(fractions))
    train, val, test = (float(f) / total for f in fractions)
    return train, val, test


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.replace("/", ",").split(",")]
    except ValueError:
        raise DatasetError(f"cannot read split fractions {text!r}: write e.g. 0.7,0.15,0.15") from None
    return check_fractions(values)


def _order_key(key: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}\0{key}".encode()).hexdigest()


def assign_splits(samples: Sequence[Sample], fractions: Sequence[float] = DEFAULT_FRACTIONS, *,
                  reassign: bool = False, salt: str = "") -> list[Sample]:
    """Return ``samples`` (same order) with every split assigned; see the module docstring."""
    shares = check_fractions(fractions)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[s.sha256 or f"path:{s.path}"].append(i)
    split_of: dict[str, str] = {}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    todo: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        label = samples[members[0]].label
        kept = None if reassign else next((samples[i].split for i in members if samples[i].split in SPLITS), None)
        if kept is not None:
            split_of[key] = kept
            counts[label][kept] += len(members)
        else:
            todo[label].append(key)
    for label, keys in todo.items():
        have = counts[label]
        for key in sorted(keys, key=lambda k: _order_key(k, salt)):
            total = sum(have.values()) + len(groups[key])
            best = max(SPLITS, key=lambda sp: (shares[SPLITS.index(sp)] * total - have[sp], -SPLITS.index(sp)))
            split_of[key] = best
            have[best] += len(groups[key])
    out = list(samples)
    for key, members in groups.items():
        for i in members:
            if out[i].split != split_of[key] and (reassign or out[i].split not in SPLITS):
                out[i] = replace(out[i], split=split_of[key])
    return out
