"""``synthesize``: the standard layout, balanced as asked, the same bytes for the same seed."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from datasets.check import check_dataset
from datasets.layout import Dataset, DatasetError
from datasets.synth import synthesize

SIZE = (72, 96)


def test_synth_writes_the_layout_balanced_and_checkable(tmp_path: Path) -> None:
    ds = synthesize(tmp_path / "d", n=60, recipe="flange", seed=1, size=SIZE, defect_fraction=0.5)
    assert ds.info.classes == ("good", "scratch", "crack", "pit", "stain", "missing_hole", "chipped_edge")
    assert ds.info.pass_classes == ("good",)
    counts = ds.class_counts()
    assert counts["good"] == 30 and sum(counts.values()) == 60 and all(counts[d] == 5 for d in ds.info.classes[1:])
    assert {s.split for s in ds.samples} == {"train", "val", "test"}
    for s in ds.samples:
        assert s.path.startswith(f"images/{s.label}/") and len(s.sha256) == 64
        img = cv2.imread(str(ds.abspath(s)), cv2.IMREAD_UNCHANGED)
        assert img.shape == SIZE
        if s.label == "good":
            assert s.mask == ""
        else:
            mask = cv2.imread(str(ds.root / s.mask), cv2.IMREAD_GRAYSCALE)
            assert mask.shape == SIZE and mask.max() == 255
    assert Dataset.load(ds.root).fingerprint() == ds.fingerprint()
    assert check_dataset(ds).ok


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", n=24, recipe="steel", seed=4, size=SIZE, workers=1)
    b = synthesize(tmp_path / "b", n=24, recipe="steel", seed=4, size=SIZE, workers=2)
    assert _tree(a.root) == _tree(b.root)
    c = synthesize(tmp_path / "c", n=24, recipe="steel", seed=5, size=SIZE, workers=1)
    assert a.fingerprint() != c.fingerprint()


def test_defect_subset_fraction_and_refusals(tmp_path: Path) -> None:
    ds = synthesize(tmp_path / "d", n=20, size=SIZE, defects=["pit", "stain"], defect_fraction=0.2)
    assert ds.info.classes == ("good", "pit", "stain") and ds.class_counts() == {"good": 16, "pit": 2, "stain": 2}
    with pytest.raises(DatasetError, match="not empty"):
        synthesize(tmp_path / "d", n=5, size=SIZE)
    with pytest.raises(DatasetError):
        synthesize(tmp_path / "e", n=5, size=SIZE, defects=["good"])
    with pytest.raises(DatasetError):
        synthesize(tmp_path / "f", n=5, size=SIZE, splits=(0.5, -0.1, 0.6))
    assert not (tmp_path / "e").exists() and not (tmp_path / "f").exists()
