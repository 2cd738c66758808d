"""K-fold cross-validation on the dataset layout: grouped, stratified fold ids in the manifest's
``fold`` column, and the view of the dataset that trains on the other folds and tests on one.

Folds cover every image that is not in a fixed test split (a test set that came with the data
stays out of cross-validation). ``fold_view(ds, i)`` makes fold ``i`` the test split, and carves
validation (for early stopping and calibration) from the other folds, grouped the same way; it
records how in ``dataset.json``, so a model card can say what it was tested on.
"""

from __future__ import annotations

from dataclasses import replace

from datasets.groups import group_samples, remembered_group_by
from datasets.layout import Dataset, DatasetError, DatasetInfo, Sample
from datasets.split import carve_val, distribute, refuse_empty

DEFAULT_VAL_FRACTION = 0.2


def assign_folds(samples: list[Sample], k: int, *, group_by: str | None = None, salt: str = "") -> list[Sample]:
    if k < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, not {k}")
    pool = [i for i, s in enumerate(samples) if s.split != "test"]
    subset = [samples[i] for i in pool]
    groups = group_samples(subset, group_by)
    out = [replace(s, fold="") for s in samples]
    for g, b in zip(groups, distribute(groups, subset, [1 / k] * k, salt), strict=True):
        for i in g:
            out[pool[i]] = replace(out[pool[i]], fold=str(b), split="")
    refuse_empty({f"fold {b}": sum(s.fold == str(b) for s in out) for b in range(k)}, group_by, "fold")
    return out


def folds_of(dataset: Dataset) -> list[str]:
    return sorted({s.fold for s in dataset.samples if s.fold}, key=int)


def fold_view(dataset: Dataset, fold: int, *, val_fraction: float = DEFAULT_VAL_FRACTION) -> Dataset:
    """Fold ``fold`` as the test split, the other folds as train with ``val_fraction`` carved for validation."""
    folds = folds_of(dataset)
    if not folds:
        raise DatasetError(f"{dataset.root} has no folds: assign them with 'defectscope dataset split "
                           f"{dataset.root} --folds 3 --group-by part'")
    if str(fold) not in folds:
        raise DatasetError(f"fold {fold} is not one of the dataset's folds ({', '.join(folds)})")
    group_by = remembered_group_by(dataset)
    inside = [replace(s, split="test" if s.fold == str(fold) else "train") for s in dataset.samples if s.fold]
    inside = carve_val(inside, val_fraction, salt=f"fold{fold}", group_by=group_by)
    how = {"fold": fold, "folds": len(folds), "test": f"fold {fold}",
           "val": f"{val_fraction:.0%} of the other folds" + (f", grouped by {group_by}" if group_by else "")}
    info = DatasetInfo(dataset.info.classes, dataset.info.pass_classes, {**dataset.info.extra, "view": how})
    return Dataset(dataset.root, info, inside)
