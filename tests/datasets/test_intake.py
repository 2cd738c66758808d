"""Sample intake: decode-checked, content-addressed, deduplicated, atomic, safe labels, explicit new classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datasets import intake as intake_mod
from datasets.intake import SampleConflictError, SampleIntake, SampleOrigin, UnknownClassError, image_files
from datasets.layout import Dataset, DatasetError
from inspection.errors import ImageDecodeError, ImageTooLargeError
from tests.support import encode, png_bomb, run_in_threads


def img(seed: int) -> bytes:
    return encode(np.random.default_rng(seed).integers(0, 256, (11, 17, 3), dtype=np.uint8), ".png")


def store(tmp_path: Path) -> SampleIntake:
    return SampleIntake(tmp_path / "samples", known_classes=("good", "scratch"), pass_classes=("good",))


def test_add_stores_by_sha256_once(tmp_path: Path) -> None:
    s = store(tmp_path)
    r = s.add(img(1), "scratch", origin=SampleOrigin(via="api", note="lot 7,\nline 2", station="cam-1", verdict_id=3))
    assert r.created and r.split == "train" and r.path == f"images/scratch/{r.sha256}.png"
    assert (s.root / r.path).read_bytes() == img(1)
    assert not s.add(img(1), "scratch").created  # dedup
    ds = Dataset.load(s.root)
    assert [x.sha256 for x in ds.samples] == [r.sha256]
    assert ds.info.classes == ("good", "scratch") and ds.info.pass_classes == ("good",)
    assert '"note": "lot 7, line 2"' in ds.samples[0].source and '"verdict_id": 3' in ds.samples[0].source


def test_labels_are_validated_and_new_classes_explicit(tmp_path: Path) -> None:
    s = store(tmp_path)
    for bad in ("../evil", "a/b", "..", ".x", "", "sp ace", "é", "x" * 65, "nul\0"):
        with pytest.raises(DatasetError, match="not allowed"):
            s.add(img(2), bad, new_class=True)
    with pytest.raises(UnknownClassError, match="new_class"):
        s.add(img(2), "crack")
    r = s.add(img(2), "crack", new_class=True)
    assert r.new_class and Dataset.load(s.root).info.classes == ("good", "scratch", "crack")
    assert not s.add(img(3), "crack").new_class  # a class now: no flag needed
    with pytest.raises(SampleConflictError, match="already stored as 'crack'"):
        s.add(img(2), "scratch")
    with pytest.raises(DatasetError, match="split"):
        s.add(img(4), "scratch", split="golden")
    assert not list((tmp_path / "samples").rglob("*..*"))


def test_undecodable_data_is_never_stored(tmp_path: Path) -> None:
    s = store(tmp_path)
    for data in (b"", b"garbage" * 10, img(5)[:40]):
        with pytest.raises(ImageDecodeError):
            s.add(data, "scratch")
    with pytest.raises(ImageTooLargeError):
        s.add(png_bomb(), "scratch")
    assert not (s.root / "images").exists()


def test_failed_write_leaves_manifest_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = store(tmp_path)
    s.add(img(6), "scratch")
    manifest = (s.root / "manifest.csv").read_bytes()

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(intake_mod, "write_bytes_atomic", full_disk)
    with pytest.raises(OSError):
        s.add(img(7), "scratch")
    monkeypatch.undo()
    assert (s.root / "manifest.csv").read_bytes() == manifest
    assert len(Dataset.load(s.root).samples) == 1


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    s = store(tmp_path)

    def worker(k: int) -> None:
        for j in range(6):
            SampleIntake(s.root, known_classes=("good", "scratch")).add(img(100 + 10 * k + j), "scratch")

    assert not run_in_threads(worker, 4) and len(Dataset.load(s.root).samples) == 24


def test_add_files_lists_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.png").write_bytes(img(8))
    (src / "sub" / "b.png").write_bytes(img(9))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    (src / "notes.txt").write_text("ignored")
    files = image_files([src])
    assert [f.name for f in files] == ["a.png", "broken.jpg", "b.png"]
    results = store(tmp_path).add_files(files, "scratch")
    errors = [r for _, r in results if isinstance(r, str)]
    assert len(errors) == 1 and len(Dataset.load(tmp_path / "samples").samples) == 2


def test_samples_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from defectscope.cli import app

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(img(200 + i))
    (src / "bad.png").write_bytes(b"nope")
    to = str(tmp_path / "samples")
    r = CliRunner().invoke(app, ["samples", "add", str(src), "--label", "chip", "--to", to])
    assert r.exit_code == 2 and "new-class" in r.output.replace("\n", " ")
    r = CliRunner().invoke(app, ["samples", "add", str(src), "--label", "chip", "--to", to, "--new-class"])
    assert r.exit_code == 0 and "3 added" in r.output and "1 refused" in r.output
    assert Dataset.load(to).class_counts() == {"chip": 3}


def test_a_crash_between_the_writes_leaves_no_half_stored_sample(tmp_path: Path) -> None:
    """A real crash (the process ends) after the image and dataset.json are written, before the
    manifest: the next intake removes the orphan and restores dataset.json."""
    import subprocess
    import sys

    s = store(tmp_path)
    first = s.add(img(1), "scratch")
    info_before = (s.root / "dataset.json").read_text()
    script = (
        "import os, sys\n"
        "from datasets import layout\n"
        "from datasets.intake import SampleIntake\n"
        "real = layout.write_text_atomic\n"
        "def crash(path, text):\n"
        "    real(path, text)\n"
        "    if path.name == 'dataset.json': os._exit(3)  # dies before the manifest is written\n"
        "layout.write_text_atomic = crash\n"
        "s = SampleIntake(sys.argv[1], known_classes=('good', 'scratch'), pass_classes=('good',))\n"
        "s.add(open(sys.argv[2], 'rb').read(), 'stain', new_class=True)\n"
    )
    (tmp_path / "new.png").write_bytes(img(2))
    proc = subprocess.run([sys.executable, "-c", script, str(s.root), str(tmp_path / "new.png")], timeout=120)
    assert proc.returncode == 3
    assert "stain" in (s.root / "dataset.json").read_text()  # the crash left it half done
    assert len(list((s.root / "images").rglob("*.png"))) == 2
    again = s.add(img(3), "scratch")  # the next intake settles it first
    ds = Dataset.load(s.root)
    assert {x.sha256 for x in ds.samples} == {first.sha256, again.sha256}
    assert sorted(p.name for p in (s.root / "images").rglob("*.png")) == sorted(
        [f"{first.sha256}.png", f"{again.sha256}.png"])
    assert "stain" not in ds.info.classes and (s.root / "dataset.json").read_text() == info_before
