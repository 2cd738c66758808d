"""NEU-DET 6-class defect typing from scratch on CPU (accuracy benchmark, not a test).

    .venv/bin/python benchmarks/train_neu.py [--src ../shared/datasets/neu-det] [--data data/neu-det]

Imports the folder-per-class set into the standard layout once (datasets.importer), assigns a
fixed stratified 60/20/20 split (datasets.split, content-hashed: the same split on every
machine), trains and evaluates on the test split. No pretrained weights (none can be downloaded
here); the published anchor (~99.4%) uses an ImageNet-pretrained ResNet-50.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _train_common import run

from datasets.importer import import_dataset
from datasets.layout import Dataset
from datasets.split import assign_splits
from training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def prepare(src: Path, data: Path) -> Dataset:
    if not (data / "manifest.csv").is_file():
        import_dataset(src, data, pass_classes=())  # no "good" class: defect typing only
    ds = Dataset.load(data)
    if any(not s.split for s in ds.samples):
        ds = ds.with_samples(assign_splits(ds.samples, (0.6, 0.2, 0.2), salt="neu-det"))
        ds.save()
    return ds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "datasets" / "neu-det")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "neu-det")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-neu")
    p.add_argument("--arch", default="defectnet")
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=0, help="0: run the whole cosine schedule, keep the best epoch")
    p.add_argument("--restart", action="store_true")
    a = p.parse_args()
    ds = prepare(a.src, a.data)
    print({s: len(ds.split(s)) for s in ("train", "val", "test")}, dict(ds.class_counts()))
    # steel texture has no orientation: every flip and 90-degree turn is another valid sample
    cfg = TrainConfig(data=str(a.data), out=str(a.out), arch=a.arch, input_size=(a.size, a.size), color="gray",
                      epochs=a.epochs, patience=a.patience, name="neu-det")
    run(cfg, title="NEU-DET 6-class", restart=a.restart)


if __name__ == "__main__":
    main()
