"""COCO, Pascal VOC and YOLO annotations in: rasterised masks, labels from classes, listed errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from datasets.importer import import_dataset
from datasets.layout import Dataset, DatasetError

H, W = 40, 60


def _images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        img = np.full((H, W), 60 + 20 * k, np.uint8)
        img[0, 0] = 0
        cv2.imwrite(str(folder / name), img)
    return folder


def _mask(ds: Dataset, name: str) -> np.ndarray | None:
    sample = next(s for s in ds.samples if Path(s.source).name == name)
    return None if not sample.mask else cv2.imread(str(ds.root / sample.mask), cv2.IMREAD_GRAYSCALE)


def _label(ds: Dataset, name: str) -> str:
    return next(s.label for s in ds.samples if Path(s.source).name == name)


# -- COCO ---------------------------------------------------------------------------------------
def _coco(tmp_path: Path) -> tuple[Path, dict]:
    images = _images(tmp_path / "imgs", ["poly.png", "rle.png", "box.png", "clean.png", "two.png"])
    rle_mask = np.zeros((H, W), np.uint8, order="F")
    rle_mask[5:15, 10:30] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_mask))
    doc = {
        "images": [{"id": i, "file_name": n, "height": H, "width": W}
                   for i, n in enumerate(["poly.png", "rle.png", "box.png", "clean.png", "two.png"], start=1)],
        "categories": [{"id": 1, "name": "scratch"}, {"id": 2, "name": "oil stain"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
            {"id": 2, "image_id": 2, "category_id": 2, "segmentation": {"size": [H, W],
                                                                         "counts": rle["counts"].decode()}},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [40, 5, 10, 20]},
            {"id": 4, "image_id": 5, "category_id": 1, "bbox": [0, 0, 4, 4]},  # small scratch
            {"id": 5, "image_id": 5, "category_id": 2, "bbox": [20, 10, 30, 25]},  # larger stain
            {"id": 6, "image_id": 5, "category_id": 1, "segmentation": {"size": [H, W],  # uncompressed RLE
                                                                         "counts": [W * H - 10, 10]}},
        ],
    }
    (tmp_path / "coco.json").write_text(json.dumps(doc))
    return images, doc


def test_coco_polygons_rle_boxes_and_unannotated_images(tmp_path: Path) -> None:
    images, _ = _coco(tmp_path)
    result = import_dataset(images, tmp_path / "ds", annotations=tmp_path / "coco.json")  # format from .json
    ds = result.dataset
    assert ds.info.classes == ("good", "oil_stain", "scratch") and ds.info.pass_classes == ("good",)
    assert _label(ds, "clean.png") == "good" and _mask(ds, "clean.png") is None
    poly = _mask(ds, "poly.png")
    assert _label(ds, "poly.png") == "scratch" and poly[15, 20] == 255 and poly[30, 20] == 0 and poly[15, 5] == 0
    rle = _mask(ds, "rle.png")
    assert _label(ds, "rle.png") == "oil_stain" and rle[5:15, 10:30].all() and rle.sum() == 10 * 20 * 255
    box = _mask(ds, "box.png")
    assert box[5:25, 40:50].all() and box.sum() == 10 * 20 * 255
    # two classes in one image: the larger area labels it, the classes column names both, the mask holds all
    two = next(s for s in ds.samples if Path(s.source).name == "two.png")
    assert two.label == "oil_stain" and two.column("classes") == "oil_stain;scratch"
    m = _mask(ds, "two.png")
    assert m[0:4, 0:4].all() and m[10:35, 20:50].all() and m[-10:, -1].all()  # RLE runs down columns
    assert result.masks == 4 and set(np.unique(m)) <= {0, 255}


def test_coco_bad_annotations_are_listed_and_nothing_is_written(tmp_path: Path) -> None:
    images, doc = _coco(tmp_path)
    doc["images"].append({"id": 9, "file_name": "missing.png", "height": H, "width": W})
    doc["annotations"] += [
        {"id": 10, "image_id": 9, "category_id": 1, "bbox": [1, 1, 2, 2]},  # image not on disk
        {"id": 11, "image_id": 4, "category_id": 7, "bbox": [1, 1, 2, 2]},  # unknown class
        {"id": 12, "image_id": 1, "category_id": 1, "bbox": [50, 30, 40, 40]},  # out of the image
        {"id": 13, "image_id": 42, "category_id": 1, "bbox": [1, 1, 2, 2]},  # image id not listed
    ]
    (tmp_path / "coco.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError) as err:
        import_dataset(images, tmp_path / "ds", annotations=tmp_path / "coco.json", ann_format="coco")
    text = str(err.value)
    assert "4 labelling problems" in text
    for needle in ("missing.png", "unknown category id 7", "outside the 60x40 image", "image id 42"):
        assert needle in text
    assert not (tmp_path / "ds").exists()
    # asked to, the importer leaves exactly those images out and lists them
    result = import_dataset(images, tmp_path / "ds", annotations=tmp_path / "coco.json", skip_bad=True)
    assert {Path(s.source).name for s in result.dataset.samples} == {"rle.png", "box.png", "two.png"}
    assert len(result.skipped) == 4


def test_a_malformed_coco_file_is_one_clear_error(tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", ["a.png"])
    (tmp_path / "coco.json").write_text('{"images": [{"id": 1, "file_name": "a.png"}], "annotations": [')
    with pytest.raises(DatasetError, match=r"COCO file .* is malformed"):
        import_dataset(images, tmp_path / "ds", annotations=tmp_path / "coco.json")
    (tmp_path / "coco.json").write_text('{"annotations": []}')
    with pytest.raises(DatasetError, match="malformed"):
        import_dataset(images, tmp_path / "ds", annotations=tmp_path / "coco.json")
    assert not (tmp_path / "ds").exists()


def test_malformed_segmentations_are_listed(tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", ["a.png", "b.png", "c.png", "d.png"])
    segs = [{"size": [H + 1, W], "counts": [10, 5]}, [["x", "y", 1, 2, 3, 4]], [[1, 1, 2, 2]], {"counts": 5}]
    doc = {"images": [{"id": i, "file_name": n} for i, n in enumerate(["a.png", "b.png", "c.png", "d.png"])],
           "categories": [{"id": 1, "name": "dent"}],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "segmentation": seg}
                           for i, seg in enumerate(segs)]}
    (tmp_path / "coco.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError) as err:
        import_dataset(images, tmp_path / "ds", annotations=tmp_path / "coco.json")
    text = str(err.value)
    assert "4 labelling problems" in text and "does not fit" in text and "three points" in text
    assert text.count("malformed segmentation") >= 1


# -- Pascal VOC ---------------------------------------------------------------------------------
def _voc_xml(name: str, objects: list[tuple[str, tuple[int, int, int, int]]], size: tuple[int, int] = (W, H)) -> str:
    objs = "".join(f"<object><name>{c}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for c, b in objects)
    return (f"<annotation><filename>{name}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
            f"<depth>1</depth></size>{objs}</annotation>")


def test_voc_boxes_and_images_without_xml(tmp_path: Path) -> None:
    images = _images(tmp_path / "JPEGImages", ["crack.png", "none.png", "empty.png"])
    ann = tmp_path / "Annotations"
    ann.mkdir()
    (ann / "crack.xml").write_text(_voc_xml("crack.png", [("crazing", (11, 6, 20, 15))]))
    (ann / "empty.xml").write_text(_voc_xml("empty.png", []))  # annotated, no objects: good
    ds = import_dataset(images, tmp_path / "ds", annotations=ann).dataset
    assert {Path(s.source).name: s.label for s in ds.samples} == {"crack.png": "crazing", "none.png": "good",
                                                                  "empty.png": "good"}
    m = _mask(ds, "crack.png")
    assert m[5:15, 10:20].all() and m.sum() == 10 * 10 * 255  # VOC boxes are 1-based and inclusive


def test_voc_malformed_xml_and_wrong_size_are_listed(tmp_path: Path) -> None:
    images = _images(tmp_path / "imgs", ["a.png", "b.png", "c.png"])
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "a.xml").write_text("<annotation><filename>a.png</filename><object>")  # truncated
    (ann / "b.xml").write_text(_voc_xml("b.png", [("pit", (1, 1, 5, 5))], size=(W * 2, H)))
    (ann / "c.xml").write_text(_voc_xml("c.png", [("pit", (1, 1, 5, 5))]))
    with pytest.raises(DatasetError) as err:
        import_dataset(images, tmp_path / "ds", annotations=ann, ann_format="voc")
    assert "2 labelling problems" in str(err.value) and "a.xml is malformed" in str(err.value)
    assert "annotations say 120x40 but the image is 60x40" in str(err.value)
    assert not (tmp_path / "ds").exists()


# -- YOLO ---------------------------------------------------------------------------------------
def test_yolo_boxes_polygons_and_images_without_labels(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", ["box.png", "seg.png", "bare.png"])
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("hole\nrust spot\n")
    (labels / "box.txt").write_text("0 0.5 0.5 0.5 0.5\n")  # centre, 30x20 pixels
    (labels / "seg.txt").write_text("1 0.1 0.1 0.4 0.1 0.4 0.6 0.1 0.6\n\n")
    ds = import_dataset(images, tmp_path / "ds", annotations=labels).dataset  # format and classes.txt found
    assert {Path(s.source).name: s.label for s in ds.samples} == {"box.png": "hole", "seg.png": "rust_spot",
                                                                  "bare.png": "good"}
    box = _mask(ds, "box.png")
    assert box[10:30, 15:45].all() and box.sum() == 20 * 30 * 255
    seg = _mask(ds, "seg.png")
    assert seg[10, 12] == 255 and seg[30, 50] == 0


def test_yolo_bad_lines_are_listed(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", ["a.png", "b.png", "c.png", "d.png"])
    labels = tmp_path / "labels"
    labels.mkdir()
    (tmp_path / "data.yaml").write_text("names:\n  0: hole\n")
    (labels / "a.txt").write_text("zero 0.5 0.5 0.1 0.1\n")  # malformed
    (labels / "b.txt").write_text("3 0.5 0.5 0.1 0.1\n")  # unknown class
    (labels / "c.txt").write_text("0 0.5 0.5 1.8 0.1\n")  # out of the image
    (labels / "d.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError) as err:
        import_dataset(images, tmp_path / "ds", annotations=labels, ann_format="yolo")
    text = str(err.value)
    assert "3 labelling problems" in text
    assert "a.txt line 1 is not" in text and "class 3 is not in the 1 class names" in text and "c.png" in text
    ds = import_dataset(images, tmp_path / "ds", annotations=labels, skip_bad=True).dataset
    assert [Path(s.source).name for s in ds.samples] == ["d.png"]


def test_yolo_without_class_names_says_how_to_give_them(tmp_path: Path) -> None:
    images = _images(tmp_path / "images", ["a.png"])
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match="--classes"):
        import_dataset(images, tmp_path / "ds", annotations=tmp_path / "labels")
