"""Splits that respect how data is made: grouped by part, val carved from train, k folds, no leaks."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.check import check_dataset
from datasets.folds import assign_folds, fold_view
from datasets.layout import Dataset, DatasetError, DatasetInfo, Sample
from datasets.split import assign_splits, carve_val

KOLEKTOR = Path(os.environ.get("DEFECTSCOPE_DATASETS", Path(__file__).parents[3] / "shared" / "datasets")) \
    / "kolektorsdd"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parts_like_kolektor(n_parts: int = 50, views: int = 8, duplicates: int = 3) -> list[Sample]:
    """Like KolektorSDD: 8 views per part, a defect in one view of some parts, and a few parts whose
    files are byte-identical to another part's (kos01 = kos26 there)."""
    samples = []
    for p in range(n_parts):
        defect_view = p % views if p % 7 in (0, 3) else None
        for v in range(views):
            twin = p - n_parts // 2 if p >= n_parts - duplicates else p  # last parts copy earlier ones
            label = "defect" if v == defect_view else "good"
            if twin != p:
                label = "defect" if v == (twin % views if twin % 7 in (0, 3) else None) else "good"
            samples.append(Sample(f"images/{label}/kos{p:02d}_Part{v}.png", label, "", _sha(f"{twin}-{v}"),
                                  source=f"kos{p:02d}_Part{v}.jpg", extra={"part": f"kos{p:02d}"}))
    return samples


def _where(samples: list[Sample], key) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        out[key(s)].add(s.fold or s.split)
    return out


def test_folds_grouped_by_part_never_share_a_part_or_a_file() -> None:
    samples = assign_folds(parts_like_kolektor(), 3, group_by="part")
    assert all(s.fold in ("0", "1", "2") and s.split == "" for s in samples)
    assert all(len(places) == 1 for places in _where(samples, lambda s: s.column("part")).values())
    assert all(len(places) == 1 for places in _where(samples, lambda s: s.sha256).values())
    sizes = Counter(s.fold for s in samples)
    defects = Counter(s.fold for s in samples if s.label == "defect")
    assert max(sizes.values()) - min(sizes.values()) <= 16  # two parts of 8
    assert max(defects.values()) - min(defects.values()) <= 1  # stratified
    assert assign_folds(parts_like_kolektor(), 3, group_by="part") == samples  # deterministic


def test_a_random_split_would_leak_parts_a_grouped_one_does_not() -> None:
    grouped = assign_splits(parts_like_kolektor(), (0.6, 0.2, 0.2), group_by="part")
    assert all(len(p) == 1 for p in _where(grouped, lambda s: s.column("part")).values())
    loose = assign_splits(parts_like_kolektor(), (0.6, 0.2, 0.2))
    assert any(len(p) > 1 for p in _where(loose, lambda s: s.column("part")).values())


def test_group_by_regex_on_the_file_name() -> None:
    samples = assign_splits(parts_like_kolektor(), (0.6, 0.2, 0.2), group_by=r"regex:^(kos\d+)_")
    assert all(len(p) == 1 for p in _where(samples, lambda s: s.column("part")).values())
    with pytest.raises(DatasetError, match="does not match the file name"):
        assign_splits(parts_like_kolektor(), group_by=r"regex:^lot(\d+)")
    with pytest.raises(DatasetError, match="not a valid regular expression"):
        assign_splits(parts_like_kolektor(), group_by="regex:(")


def test_group_by_a_missing_column_names_the_images() -> None:
    samples = parts_like_kolektor()
    samples[3] = Sample(samples[3].path, samples[3].label, "", samples[3].sha256)
    with pytest.raises(DatasetError, match="1 images have no 'part' value"):
        assign_splits(samples, group_by="part")


def _fixed_test(n: int = 100) -> list[Sample]:
    """A dataset that arrived with its own test split and everything else unassigned."""
    return [Sample(f"images/x/{k}.png", "defect" if k % 5 == 0 else "good", "test" if k < n else "", _sha(str(k)))
            for k in range(2 * n)]


def test_fractions_apply_to_the_images_being_assigned() -> None:
    """The trap of the issue: 0.85,0.15,0 on a dataset with a fixed test half gave val nothing."""
    samples = assign_splits(_fixed_test(), (0.85, 0.15, 0))
    counts = Counter(s.split for s in samples)
    assert counts == {"test": 100, "train": 85, "val": 15}
    assert Counter(s.label for s in samples if s.split == "val") == {"good": 12, "defect": 3}


def test_val_carved_from_train_leaves_test_untouched() -> None:
    before = assign_splits(_fixed_test(), (1, 0, 0))
    after = carve_val(before, 0.2)
    assert [s for s in after if s.split == "test"] == [s for s in before if s.split == "test"]
    assert Counter(s.split for s in after) == {"test": 100, "train": 80, "val": 20}
    assert sum(s.label == "defect" for s in after if s.split == "val") == 4


def test_an_empty_split_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from defectscope.cli import app

    ds = _files_dataset(tmp_path / "ds", n_parts=2)
    manifest = (ds.root / "manifest.csv").read_bytes()
    res = CliRunner().invoke(app, ["dataset", "split", str(ds.root), "--group-by", "part", "--fractions", "1,1,1"])
    assert res.exit_code != 0 and "would be empty grouped by part" in res.output
    assert (ds.root / "manifest.csv").read_bytes() == manifest
    res = CliRunner().invoke(app, ["dataset", "split", str(ds.root), "--folds", "3", "--group-by", "part"])
    assert res.exit_code != 0 and "fold 2 would be empty" in res.output
    assert (ds.root / "manifest.csv").read_bytes() == manifest


def _files_dataset(root: Path, n_parts: int = 6, views: int = 4) -> Dataset:
    samples = []
    for p in range(n_parts):
        for v in range(views):
            label = "defect" if v == 0 and p % 2 == 0 else "good"
            img = np.full((12, 16), 40 + 8 * p + v, np.uint8)  # distinct bytes: identical files would merge
            rel = f"images/{label}/p{p}_v{v}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            data = cv2.imencode(".png", img)[1].tobytes()
            (root / rel).write_bytes(data)
            samples.append(Sample(rel, label, "", hashlib.sha256(data).hexdigest(), extra={"part": f"P{p}"}))
    ds = Dataset(root, DatasetInfo(("defect", "good")), samples)
    ds.save()
    return ds


def test_cli_folds_are_stored_remembered_and_checked(tmp_path: Path) -> None:
    from defectscope.cli import app

    ds = _files_dataset(tmp_path / "ds")
    res = CliRunner().invoke(app, ["dataset", "split", str(ds.root), "--folds", "3", "--group-by", "part"])
    assert res.exit_code == 0, res.output
    assert "train --data" in res.output and "--fold 0" in res.output
    loaded = Dataset.load(ds.root)
    assert json.loads((ds.root / "dataset.json").read_text())["group_by"] == "part"
    assert all(len(p) == 1 for p in _where(loaded.samples, lambda s: s.column("part")).values())
    assert not check_dataset(loaded).errors
    view = fold_view(loaded, 1)  # fold 1 tests, val carved from the others, grouped by part as remembered
    assert {s.split for s in view.samples} == {"train", "val", "test"}
    assert all(s.fold == "1" for s in view.split("test"))
    assert all(len(p) == 1 for p in _where(view.samples, lambda s: s.column("part")).values())
    assert view.info.extra["view"]["fold"] == 1
    # a hand edit that puts one part in two folds is a leak the checker names
    rows = loaded.samples
    rows[0] = Sample(rows[0].path, rows[0].label, "", rows[0].sha256, fold=str((int(rows[0].fold) + 1) % 3),
                     extra=rows[0].extra)
    leak = check_dataset(Dataset(loaded.root, loaded.info, rows))
    assert any(f.code == "group-leak" and "P0" in f.paths for f in leak.errors)


def test_cli_val_from_train_in_one_command(tmp_path: Path) -> None:
    from defectscope.cli import app

    ds = _files_dataset(tmp_path / "ds", n_parts=10)
    rows = [Sample(s.path, s.label, "test" if s.column("part") in ("P0", "P1") else "train", s.sha256,
                   extra=s.extra) for s in ds.samples]
    Dataset(ds.root, ds.info, rows).save()
    res = CliRunner().invoke(app, ["dataset", "split", str(ds.root), "--val-from-train", "0.25",
                                   "--group-by", "part"])
    assert res.exit_code == 0, res.output
    after = Dataset.load(ds.root)
    assert [s.path for s in after.split("test")] == [s.path for s in rows if s.split == "test"]
    assert len(after.split("val")) == 8 and len(after.split("train")) == 24  # 2 of the 8 train parts
    assert all(len(p) == 1 for p in _where(after.samples, lambda s: s.column("part")).values())


@pytest.mark.skipif(not (KOLEKTOR / "parts.csv").is_file(), reason="KolektorSDD is not in ../shared/datasets")
def test_kolektorsdd_imports_with_masks_and_parts_and_folds_by_part(tmp_path: Path) -> None:
    """The issue's own case, on the real data: two commands, and no part in two folds."""
    from defectscope.cli import app

    run = CliRunner()
    res = run.invoke(app, ["dataset", "import", str(KOLEKTOR / "parts.csv"), "--out", str(tmp_path / "ksdd"),
                           "--masks", str(KOLEKTOR / "masks")])
    assert res.exit_code == 0, res.output
    res = run.invoke(app, ["dataset", "split", str(tmp_path / "ksdd"), "--folds", "3", "--group-by", "part"])
    assert res.exit_code == 0, res.output
    ds = Dataset.load(tmp_path / "ksdd")
    assert len(ds.samples) == 400
    defects = [s for s in ds.samples if s.label != "good"]
    assert defects and all(s.mask for s in defects)  # every defective view came with its mask
    assert all(len(p) == 1 for p in _where(ds.samples, lambda s: s.column("part")).values())
    assert all(len(p) == 1 for p in _where(ds.samples, lambda s: s.sha256).values())  # kos01 = kos26 merged
    per_fold = Counter(s.fold for s in defects).values()
    assert max(per_fold) - min(per_fold) <= 2  # merged twins carry two defects each: 18/18/16 of 52
    assert not check_dataset(ds).errors
