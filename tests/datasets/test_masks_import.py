"""Masks in with their images: a mirroring masks folder, a mask column, checks; extra columns kept."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from datasets.importer import import_dataset
from datasets.layout import Dataset, DatasetError

H, W = 24, 32


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def _plate(k: int) -> np.ndarray:
    img = np.full((H, W), 90 + k, np.uint8)
    img[0, k % W] = 0
    return img


def _soft_mask() -> np.ndarray:
    """What a labelling tool's anti-aliased (or JPEG) mask looks like: 0, 255 and values between."""
    m = np.zeros((H, W), np.uint8)
    m[4:10, 4:12] = 255
    m[10, 4:12] = 200  # kept (>= 128)
    m[11, 4:12] = 60  # dropped
    return m


def test_masks_folder_beside_the_class_folders_is_found_not_a_class(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for k in range(3):
        _write(src / "good" / f"g{k}.png", _plate(k))
        _write(src / "crack" / f"c{k}.png", _plate(10 + k))
    _write(src / "masks" / "crack" / "c0.png", _soft_mask())
    _write(src / "masks" / "crack" / "c1.bmp", _soft_mask())
    result = import_dataset(src, tmp_path / "ds")
    ds = result.dataset
    assert ds.info.classes == ("crack", "good") and result.masks == 2
    with_mask = {Path(s.source).name: s.mask for s in ds.samples if s.mask}
    assert set(with_mask) == {"c0.png", "c1.png"}
    m = cv2.imread(str(ds.root / with_mask["c0.png"]), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(m)) == {0, 255} and m[10, 5] == 255 and m[11, 5] == 0


def test_masks_dir_option_and_mask_size_check(tmp_path: Path) -> None:
    src, masks = tmp_path / "src", tmp_path / "elsewhere"
    _write(src / "good" / "g.png", _plate(0))
    _write(src / "dent" / "d.png", _plate(1))
    _write(src / "dent" / "e.png", _plate(2))
    _write(masks / "dent" / "d.png", _soft_mask())
    _write(masks / "dent" / "e.png", np.zeros((H, W + 1), np.uint8))  # not the image's size
    with pytest.raises(DatasetError, match=r"(?s)1 labelling problem,.*e.png is 33x24 but the image is 32x24"):
        import_dataset(src, tmp_path / "ds", masks=masks)
    assert not (tmp_path / "ds").exists()
    result = import_dataset(src, tmp_path / "ds", masks=masks, skip_bad=True)
    assert {Path(s.source).name for s in result.dataset.samples} == {"g.png", "d.png"} and result.masks == 1


def test_csv_mask_column_and_extra_columns_are_kept(tmp_path: Path) -> None:
    for k in range(4):
        _write(tmp_path / "img" / f"p{k}.png", _plate(k))
    _write(tmp_path / "m" / "p1-mask.png", _soft_mask())
    (tmp_path / "list.csv").write_text(
        "path,label,mask,part,lot\n"
        "img/p0.png,good,,A,L1\n"
        "img/p1.png,pit,m/p1-mask.png,A,L1\n"
        "img/p2.png,good,,B,L2\n"
        "img/p3.png,pit,,B,L2\n")  # a defect without a mask is allowed (the mask loss skips it)
    ds = import_dataset(tmp_path / "list.csv", tmp_path / "ds").dataset
    by_name = {Path(s.source).name: s for s in ds.samples}
    assert by_name["p1.png"].mask and not by_name["p3.png"].mask
    assert by_name["p2.png"].column("part") == "B" and by_name["p2.png"].column("lot") == "L2"
    again = Dataset.load(ds.root)  # the columns survive the manifest round trip
    assert {s.column("part") for s in again.samples} == {"A", "B"}
    header = (ds.root / "manifest.csv").read_text().splitlines()[0].split(",")
    assert {"part", "lot", "fold"} <= set(header)


def test_meta_csv_adds_columns_by_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for k in range(2):
        _write(src / "good" / f"g{k}.png", _plate(k))
    (tmp_path / "meta.csv").write_text("path,camera,shift\ngood/g0.png,cam1,night\ngood/g1.png,cam2,day\n")
    ds = import_dataset(src, tmp_path / "ds", meta=tmp_path / "meta.csv").dataset
    assert {s.column("camera") for s in ds.samples} == {"cam1", "cam2"}


def test_cli_import_with_masks_reports_them(tmp_path: Path) -> None:
    from defectscope.cli import app

    src = tmp_path / "src"
    _write(src / "good" / "g.png", _plate(0))
    _write(src / "crack" / "c.png", _plate(1))
    _write(src / "masks" / "crack" / "c.png", _soft_mask())
    res = CliRunner().invoke(app, ["dataset", "import", str(src), "--out", str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    assert "1 with a defect mask" in res.output
