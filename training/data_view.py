"""Which images a training run trains, validates and tests on: the dataset's own splits, a
cross-validation fold held out as test (``--fold``), or val carved from train (``--carve-val``).

The view is computed in memory, never written to the dataset, and recorded in
``dataset.json``'s ``view`` (and from there on the model card), so a card says what its test
figure was measured on. The same config gives the same view, so a resumed run sees the same data.
"""

from __future__ import annotations

from datasets.folds import DEFAULT_VAL_FRACTION, fold_view, folds_of
from datasets.groups import remembered_group_by
from datasets.layout import Dataset, DatasetError, DatasetInfo
from datasets.split import carve_val
from training.config import TrainConfig


def training_dataset(config: TrainConfig, dataset: Dataset | None = None) -> Dataset:
    """The dataset as this run sees it; refuses (naming the fix) a dataset without a val split."""
    dataset = dataset if dataset is not None else Dataset.load(config.data)
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


def view_of(dataset: Dataset) -> dict | None:
    """How ``training_dataset`` derived the splits, or None when they are the dataset's own."""
    return dataset.info.extra.get("view")
