"""Train/val/test assignment and cross-validation folds: stratified by label, grouped, stable.

Images that belong together (``datasets.groups``: the views of one part, a lot, identical files)
always land together. Fractions apply to the images being assigned, not to the whole dataset:
``--fractions 0.85,0.15,0`` on a dataset that came with 1,000 fixed test images gives its other
images 85/15. Images that already have a split keep it (unless ``reassign``), so a re-run changes
nothing and adding images never moves a model's test set. ``carve_val`` takes a share of the
train split for validation and leaves test untouched. A split (or fold) that would end up empty
is an error before anything is written.

Groups are dealt out greedily: groups holding the rarest labels first, each to the split whose
share of those labels is furthest below its target, ties broken by a content hash, so the result
is deterministic and every label is spread over the splits in the asked proportions.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from datasets.groups import group_samples
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


def distribute(groups: Sequence[Sequence[int]], samples: Sequence[Sample], shares: Sequence[float],
               salt: str = "") -> list[int]:
    """The bin (index into ``shares``) for each group: stratified by label, deterministic."""
    totals = Counter(samples[i].label for g in groups for i in g)
    labels = [Counter(samples[i].label for i in g) for g in groups]
    have = [Counter() for _ in shares]

    def order(k: int) -> tuple[int, int, str]:
        rarest = min(totals[lb] for lb in labels[k])
        return rarest, -len(groups[k]), _order_key(samples[groups[k][0]].sha256 or samples[groups[k][0]].path, salt)

    out = [0] * len(groups)
    for k in sorted(range(len(groups)), key=order):
        def need(b: int, k: int = k) -> tuple[float, float, int]:
            gain = sum(n * (shares[b] * totals[lb] - have[b][lb]) / totals[lb] for lb, n in labels[k].items())
            return gain, shares[b] - sum(have[b].values()) / max(1, sum(totals.values())), -b

        best = max((b for b, share in enumerate(shares) if share > 0), key=need)
        out[k] = best
        have[best].update(labels[k])
    return out


def assign_splits(samples: Sequence[Sample], fractions: Sequence[float] = DEFAULT_FRACTIONS, *,
                  reassign: bool = False, salt: str = "", group_by: str | None = None) -> list[Sample]:
    """``samples`` (same order) with every split assigned; see the module docstring."""
    shares = check_fractions(fractions)
    groups = group_samples(samples, group_by)
    out = list(samples)
    todo = []
    for g in groups:
        kept = None if reassign else next((samples[i].split for i in g if samples[i].split in SPLITS), None)
        if kept is None:
            todo.append(g)
        else:  # a group follows the split one of its members already has
            for i in g:
                if not samples[i].split or samples[i].split not in SPLITS:
                    out[i] = replace(out[i], split=kept)
    for g, b in zip(todo, distribute(todo, samples, shares, salt), strict=True):
        for i in g:
            out[i] = replace(out[i], split=SPLITS[b])
    refuse_empty({sp: sum(s.split == sp for s in out) for sp, f in zip(SPLITS, shares, strict=True) if f > 0},
                  group_by, "split")
    return out


def carve_val(samples: Sequence[Sample], fraction: float, *, salt: str = "",
              group_by: str | None = None) -> list[Sample]:
    """Move ``fraction`` of the train split (whole groups, stratified) to val; every other split stays."""
    if not 0 < fraction < 1:
        raise DatasetError(f"the validation share {fraction} must lie between 0 and 1 (e.g. 0.15)")
    train = [i for i, s in enumerate(samples) if s.split == "train"]
    if not train:
        raise DatasetError("the dataset has no train split to carve validation from: assign splits first "
                           "('defectscope dataset split DATASET')")
    pool = [samples[i] for i in train]
    groups = group_samples(pool, group_by)
    out = list(samples)
    for g, b in zip(groups, distribute(groups, pool, (1 - fraction, fraction), salt), strict=True):
        for i in g:
            out[train[i]] = replace(out[train[i]], split=("train", "val")[b])
    refuse_empty({sp: sum(s.split == sp for s in out) for sp in ("train", "val")}, group_by, "split")
    return out


def refuse_empty(counts: dict[str, int], group_by: str | None, what: str) -> None:
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        groups = f" grouped by {group_by}" if group_by else ""
        raise DatasetError(f"the {what} {', '.join(empty)} would be empty{groups} ({counts}): give it a share, add "
                           "images, or group less coarsely; nothing was written")
