"""import, split and check: what a user relies on before training."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.check import check_dataset
from datasets.importer import import_dataset
from datasets.layout import Dataset, DatasetError, Sample
from datasets.split import assign_splits


def _img(path: Path, value: int, shape: tuple[int, int] = (11, 17)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full(shape, value, np.uint8)
    img[0, 0] = 255 - value
    path.write_bytes(cv2.imencode(path.suffix, img)[1].tobytes())


def _source(root: Path) -> Path:
    for k in range(6):
        _img(root / "good" / f"g{k}.png", 10 + k)
        _img(root / "scratch" / "sub" / f"s{k}.png", 100 + k)
    (root / "scratch" / "readme.txt").write_text("notes")
    (root / "good" / "cut.png").write_bytes(_png_bytes()[:40])
    return root


def _png_bytes() -> bytes:
    return cv2.imencode(".png", np.zeros((9, 9), np.uint8))[1].tobytes()


def test_import_from_class_folders_skips_and_lists_bad_files(tmp_path: Path) -> None:
    result = import_dataset(_source(tmp_path / "src"), tmp_path / "ds")
    ds = result.dataset
    assert ds.info.classes == ("good", "scratch") and ds.info.pass_classes == ("good",)
    assert ds.class_counts() == {"good": 6, "scratch": 6}
    assert {Path(p).name for p, _ in result.skipped} == {"readme.txt", "cut.png"}
    assert all((ds.root / s.path).is_file() and s.split == "" for s in ds.samples)
    assert (tmp_path / "src" / "good" / "g0.png").is_file()  # the source is left alone


def test_import_from_csv(tmp_path: Path) -> None:
    _img(tmp_path / "pics" / "a.png", 1)
    _img(tmp_path / "pics" / "b.png", 2)
    _img(tmp_path / "other" / "a.png", 3)
    (tmp_path / "list.csv").write_text("path,label\npics/a.png,good\npics/b.png,dent\nother/a.png,dent\n")
    ds = import_dataset(tmp_path / "list.csv", tmp_path / "ds").dataset
    assert ds.class_counts() == {"good": 1, "dent": 2}
    assert len({s.path for s in ds.samples}) == 3  # the two a.png files do not collide
    (tmp_path / "bad.csv").write_text("path,label\npics/a.png,../etc\n")
    with pytest.raises(DatasetError, match="not allowed"):
        import_dataset(tmp_path / "bad.csv", tmp_path / "ds2")


def _samples(n_per_label: dict[str, int], start: int = 0) -> list[Sample]:
    return [Sample(path=f"images/{lab}/{k}.png", label=lab, sha256=f"{lab}-{k:04d}")
            for lab, n in n_per_label.items() for k in range(start, start + n)]


def test_split_is_stratified_stable_under_reruns_and_additions() -> None:
    first = assign_splits(_samples({"good": 100, "dent": 20}))
    per = {(s.label, s.split) for s in first}
    assert per == {(lab, sp) for lab in ("good", "dent") for sp in ("train", "val", "test")}
    assert sum(s.split == "train" for s in first if s.label == "dent") == 14
    assert assign_splits(first) == first
    grown = assign_splits(first + _samples({"good": 50, "dent": 10}, start=1000))
    assert grown[: len(first)] == first  # nothing that was assigned moves
    dents = [s for s in grown if s.label == "dent"]
    assert sum(s.split == "train" for s in dents) == 21 and sum(s.split == "test" for s in dents) in (4, 5)


def test_split_keeps_duplicates_together() -> None:
    samples = [Sample(path=f"images/good/{k}.png", label="good", sha256="same" if k < 4 else f"h{k}")
               for k in range(40)]
    out = assign_splits(samples)
    assert len({s.split for s in out[:4]}) == 1


def _dataset(tmp_path: Path) -> Dataset:
    ds = import_dataset(_source(tmp_path / "src"), tmp_path / "ds").dataset
    ds = ds.with_samples(assign_splits(ds.samples))
    ds.save()
    return ds


def test_check_passes_a_clean_dataset(tmp_path: Path) -> None:
    assert check_dataset(_dataset(tmp_path)).ok


def test_check_finds_planted_duplicates_leaks_and_corrupt_files(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    train = next(s for s in ds.samples if s.split == "train" and s.label == "good")
    test = next(s for s in ds.samples if s.split == "test" and s.label == "good")
    data = ds.abspath(train).read_bytes()
    # a copy of a training image planted in test, a same-split duplicate, and a corrupted file
    leak = Sample(path="images/good/leak.png", label="good", split="test", sha256=train.sha256)
    twin = Sample(path="images/good/twin.png", label="good", split="train", sha256=train.sha256)
    for s in (leak, twin):
        ds.abspath(s).write_bytes(data)
    broken = ds.abspath(test)
    broken.write_bytes(broken.read_bytes()[:30])
    ds = ds.with_samples([*ds.samples, leak, twin])
    ds.save()
    report = check_dataset(Dataset.load(ds.root))
    codes = {i.code for i in report.errors}
    assert {"split-leak", "unreadable"} <= codes and not report.ok
    leak_issue = next(i for i in report.errors if i.code == "split-leak")
    assert "leak.png" in leak_issue.paths[0]

    result = CliRunner().invoke(_app(), ["dataset", "check", str(ds.root)])
    assert result.exit_code == 1 and "split-leak" in result.output


def test_check_reports_missing_files_changed_files_and_label_mismatch(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    a, b, c = ds.samples[0], ds.samples[1], ds.samples[-1]
    ds.abspath(a).unlink()
    _img(ds.abspath(b), 77)
    moved = Sample(path=c.path, label="good" if c.label != "good" else "scratch", split=c.split, sha256=c.sha256)
    ds = ds.with_samples([*ds.samples[:-1], moved])
    report = check_dataset(ds)
    assert {"unreadable", "changed", "label-folder"} <= {i.code for i in report.errors}


def _app():
    from defectscope.cli import app

    return app


def test_cli_import_split_check_and_contact_sheet(tmp_path: Path) -> None:
    runner = CliRunner()
    src = _source(tmp_path / "src")
    out = tmp_path / "ds"
    r = runner.invoke(_app(), ["dataset", "import", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert runner.invoke(_app(), ["dataset", "split", str(out)]).exit_code == 0
    r = runner.invoke(_app(), ["dataset", "check", str(out)])
    assert r.exit_code == 0, r.output
    sheet = tmp_path / "sheet.png"
    r = runner.invoke(_app(), ["dataset", "contact-sheet", str(out), "--out", str(sheet), "--per-class", "3"])
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] > 20
    r = runner.invoke(_app(), ["dataset", "check", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "manifest.csv" in r.output


def test_cli_synth_and_simulate(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(_app(), ["dataset", "synth", "--out", str(tmp_path / "s"), "--n", "14", "--size", "96x72",
                               "--recipe", "steel"])
    assert r.exit_code == 0, r.output
    assert Dataset.load(tmp_path / "s").info.classes[0] == "good"
    r = runner.invoke(_app(), ["simulate", "--n", "3", "--rate", "0", "--size", "96x72", "--out", str(tmp_path / "f"),
                               "--event", "tool_fault@1:defect=pit,rate=1"])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "f" / "ground_truth.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"pit"' in lines[1] and len(list((tmp_path / "f").glob("*.jpg"))) == 3
    r = runner.invoke(_app(), ["simulate", "--n", "1", "--recipe", "nope"])
    assert r.exit_code == 2
