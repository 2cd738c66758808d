"""Which images a training run trains, validates and tests on: the dataset's own splits, a
cross-validation fold held out as test (``--fold``), val carved from train (``--carve-val``), or
for cross-fitting (``--folds K``) the same folds assigned in memory when the dataset has none, and
the final model's view of all of them.

The view is computed in memory, never written to the dataset, and recorded in
``dataset.json``'s ``view`` (and from there on the model card), so a card says what its test
figure was measured on. The same config gives the same view, so a resumed run sees the same data.
"""

from __future__ import annotations

from dataclasses import replace

from datasets.folds import DEFAULT_VAL_FRACTION, assign_folds, fold_view, folds_of
from datasets.groups import remembered_group_by
from datasets.layout import Dataset, DatasetError, DatasetInfo, Sample
from datasets.split import carve_val
from inspection.card import ANOMALY
from training.config import TrainConfig


def training_dataset(config: TrainConfig, dataset: Dataset | None = None) -> Dataset:
    """The dataset as this run sees it; refuses (naming the fix) a dataset without a val split."""
    view = _split_view(config, dataset if dataset is not None else Dataset.load(config.data))
    return good_only_view(view, asked=bool(config.good_only)) if _good_only(view, config.good_only) else view


def _split_view(config: TrainConfig, dataset: Dataset) -> Dataset:
    if config.folds is not None:
        dataset = with_folds(dataset, config.folds)
        if config.fold is None:
            return all_folds_view(dataset, config.carve_val or DEFAULT_VAL_FRACTION)
    if config.fold is not None:
        return fold_view(dataset, config.fold, val_fraction=config.carve_val or DEFAULT_VAL_FRACTION)
    folds = folds_of(dataset)
    if folds and not dataset.split("train"):
        raise DatasetError(f"{dataset.root} is divided into {len(folds)} cross-validation folds: pass --fold I "
                           f"(one of {', '.join(folds)}) to train on the others and test on that one")
    if dataset.split("val"):
        if config.carve_val:
            raise DatasetError(f"{dataset.root} already has a val split: drop --carve-val to use it")
        return dataset
    if not config.carve_val:
        raise DatasetError(
            f"{dataset.root} has no val split, which training needs for early stopping and calibration. "
            f"Carve one from train (test stays untouched): defectscope dataset split {dataset.root} "
            "--val-from-train 0.15  (or pass --carve-val 0.15 to train to do it for this run only)")
    group_by = remembered_group_by(dataset)
    samples = carve_val(dataset.samples, config.carve_val, salt="carve-val", group_by=group_by)
    how = {"val": f"{config.carve_val:.0%} of train carved at training time"
                  + (f", grouped by {group_by}" if group_by else ""), "test": "the dataset's test split"}
    info = DatasetInfo(dataset.info.classes, dataset.info.pass_classes, {**dataset.info.extra, "view": how})
    return Dataset(dataset.root, info, samples)


def _good_only(dataset: Dataset, asked: bool | None) -> bool:
    """Asked for, or (unless refused) a training split of pass-class images only."""
    if asked is not None or not dataset.info.pass_classes:
        return bool(asked)
    train = dataset.split("train")
    return bool(train) and all(s.label in dataset.info.pass_classes for s in train)


def good_only_view(dataset: Dataset, *, asked: bool) -> Dataset:
    """Train and val keep their pass-class images only; the model's classes are the pass classes and
    ``anomaly``; a test image of any defect class is an anomaly to it (its label kept as ``given_label``)."""
    passing = dataset.info.pass_classes
    if not passing:
        raise DatasetError(f"{dataset.root} names no pass class (dataset.json pass_classes), so there are no good "
                           "images to train a good-only model on")
    kept, dropped = [], 0
    for s in dataset.samples:
        if s.label in passing:
            kept.append(s)
        elif s.split == "test" or not s.split:
            kept.append(as_anomaly(s))
        else:
            dropped += 1
    why = "asked" if asked else "the training split holds good images only"
    left = f"; {dropped} defect images of train/val left out" if dropped else ""
    how = {**(view_of(dataset) or {}), "good_only": why + left}
    classes = (*(c for c in dataset.info.classes if c in passing), ANOMALY)
    return Dataset(dataset.root, DatasetInfo(classes, passing, {**dataset.info.extra, "view": how}), kept)


def as_anomaly(sample: Sample) -> Sample:
    """A defect image as a model with the anomaly class scores it (the label as given kept beside)."""
    return replace(sample, label=ANOMALY, extra={**sample.extra, "given_label": sample.label})


def with_anomaly_class(dataset: Dataset) -> Dataset:
    """The dataset with the synthesized defects' class added (a supervised run that also synthesizes)."""
    if ANOMALY in dataset.info.classes:
        return dataset
    info = DatasetInfo((*dataset.info.classes, ANOMALY), dataset.info.pass_classes, dataset.info.extra)
    return Dataset(dataset.root, info, dataset.samples)


def is_good_only(dataset: Dataset) -> bool:
    return "good_only" in (view_of(dataset) or {})


def view_of(dataset: Dataset) -> dict | None:
    """How ``training_dataset`` derived the splits, or None when they are the dataset's own."""
    return dataset.info.extra.get("view")


def with_folds(dataset: Dataset, k: int) -> Dataset:
    """The dataset with ``k`` folds: its own (which must number ``k``), or assigned in memory over every
    image outside the test split, grouped as the dataset remembers (the same data gives the same folds)."""
    have = folds_of(dataset)
    if have:
        if len(have) != k:
            raise DatasetError(f"{dataset.root} is divided into {len(have)} folds, not {k}: pass --folds {len(have)}, "
                               f"or reassign with 'defectscope dataset split {dataset.root} --folds {k}'")
        return dataset
    # the test split stays outside the folds
    group_by = remembered_group_by(dataset)
    return dataset.with_samples(assign_folds(dataset.samples, k, group_by=group_by, salt="crossfit"))


def all_folds_view(dataset: Dataset, val_fraction: float) -> Dataset:
    """The final cross-fitted model's view: it trains on every fold. Its val split is a copy of a
    share of those training images (grouped), so the epoch figures are in-sample and only show
    progress: its thresholds come from the out-of-fold scores, never from this val. The dataset's
    own test split (outside the folds) stays its test."""
    group_by = remembered_group_by(dataset)
    inside = [replace(s, split="train") for s in dataset.samples if s.fold]
    carved = carve_val(inside, val_fraction, salt="crossfit-final", group_by=group_by)
    val = [s for s in carved if s.split == "val"]
    test = [s for s in dataset.samples if not s.fold and s.split == "test"]
    how = {"folds": len(folds_of(dataset)), "train": "all folds",
           "test": "the dataset's test split" if test else "none",
           "val": f"a {val_fraction:.0%} copy of the training images (in-sample: progress only; thresholds are "
                  "out-of-fold)"}
    info = DatasetInfo(dataset.info.classes, dataset.info.pass_classes, {**dataset.info.extra, "view": how})
    return Dataset(dataset.root, info, inside + val + test)
