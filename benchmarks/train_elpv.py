"""ELPV solar cells pass/fail from scratch on CPU (accuracy benchmark, not a test).

    .venv/bin/pip install elpv-dataset   # the optional 'bench' extra
    .venv/bin/python benchmarks/train_elpv.py [--data data/elpv]

Labels: a cell is "defective" when its annotated defect probability is >= 0.5 (the 2/3 and 1
cells), "good" otherwise (0 and 1/3), the usual binarisation of ELPV; every one of the 2,624
cells is used. Fixed stratified 60/20/20 split by content hash. Anchors: 88.4% (Deitsch et al.
2019, four classes, pretrained VGG-19), about 90% with larger pretrained models.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import cv2
from _train_common import run

from datasets.layout import Dataset, DatasetInfo, Sample
from datasets.split import assign_splits
from inspection.atomic import atomic_dir
from training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def prepare(data: Path) -> Dataset:
    if not (data / "manifest.csv").is_file():
        from elpv_dataset.utils import load_dataset

        images, probs, types = load_dataset()
        samples = []
        with atomic_dir(data) as tmp:
            for i, (img, prob, kind) in enumerate(zip(images, probs, types, strict=True)):
                label = "defective" if prob >= 0.5 else "good"
                rel = f"images/{label}/cell{i:04d}_{kind}_p{round(prob * 3)}.png"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                data_bytes = cv2.imencode(".png", img)[1].tobytes()
                (tmp / rel).write_bytes(data_bytes)
                samples.append(Sample(rel, label, "", hashlib.sha256(data_bytes).hexdigest(),
                                      source=f"elpv:{i} prob={prob:.3f} type={kind}"))
            samples = assign_splits(samples, (0.6, 0.2, 0.2), salt="elpv")
            Dataset(tmp, DatasetInfo(("good", "defective"), ("good",)), samples).save()
    return Dataset.load(data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "elpv")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-elpv")
    p.add_argument("--arch", default="defectnet")
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=0, help="0: run the whole cosine schedule, keep the best epoch")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--restart", action="store_true")
    a = p.parse_args()
    ds = prepare(a.data)
    print({s: len(ds.split(s)) for s in ("train", "val", "test")}, dict(ds.class_counts()))
    cfg = TrainConfig(data=str(a.data), out=str(a.out), arch=a.arch, input_size=(a.size, a.size), color="gray",
                      epochs=a.epochs, patience=a.patience, monitor="macro_f1", name="elpv", threads=a.threads)
    run(cfg, title="ELPV pass/fail", restart=a.restart)


if __name__ == "__main__":
    main()
