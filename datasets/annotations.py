"""Annotations from labelling tools -> one label and one defect mask per image.

COCO JSON (polygons, RLE and boxes), Pascal VOC XML (boxes) and YOLO txt (boxes, and the polygons
of YOLO segmentation) are read into ``Annotated`` records; the importer rasterises each at its
image's size once the image is decoded. COCO's RLE and polygons are decoded by pycocotools (the
reference implementation), boxes and YOLO polygons filled with OpenCV.

The label of an image is the class of its annotations; an image without any is a pass image
(``good``). An image annotated with several defect classes gets the class covering the largest
area as its label, and all of them in the manifest's ``classes`` column; its mask holds every
annotation. Class names become labels with characters a label may not hold replaced by ``_``.
Annotation problems (an image that is not there, a box outside its image, an unknown class, a
malformed line or file) are one error each; the importer lists them all and writes nothing (or,
when asked, leaves those images out). A COCO file that cannot be parsed at all is one error.
"""

from __future__ import annotations

import json
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datasets.layout import LABEL_PATTERN, DatasetError
from inspection.camera.folder import list_images

FORMATS = ("coco", "voc", "yolo")
Shape = Callable[[int, int], np.ndarray]  # (height, width) -> HxW uint8 mask (0/1) of one annotation


@dataclass
class Annotated:
    """One image with its annotations: ``shapes`` per class, rasterised when the size is known."""

    path: Path
    shapes: list[tuple[str, Shape]] = field(default_factory=list)
    size: tuple[int, int] | None = None  # (h, w) the annotation file declares, checked against the image
    error: str | None = None

    def label_and_mask(self, h: int, w: int, good: str) -> tuple[str, np.ndarray | None, list[str]]:
        """(label, 0/255 mask or None, every class) at the decoded image size."""
        if self.size is not None and self.size != (h, w):
            raise DatasetError(f"the annotations say {self.size[1]}x{self.size[0]} but the image is {w}x{h}")
        if not self.shapes:
            return good, None, []
        union = np.zeros((h, w), np.uint8)
        area: dict[str, int] = {}
        for cls, shape in self.shapes:
            m = shape(h, w).astype(bool)
            union |= m
            area[cls] = area.get(cls, 0) + int(m.sum())
        classes = sorted(area, key=lambda c: (-area[c], c))
        return classes[0], union.astype(np.uint8) * 255, classes


def label_name(name: str) -> str:
    """A class name as a label: letters, digits, '_' and '-' (others become '_')."""
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name).strip()).strip("_")[:64]
    if not clean or not LABEL_PATTERN.fullmatch(clean):
        raise DatasetError(f"class name {name!r} cannot become a label: rename it in the annotations")
    return clean


def _box(x0: float, y0: float, x1: float, y1: float) -> Shape:
    def shape(h: int, w: int) -> np.ndarray:
        if x0 < -1 or y0 < -1 or x1 > w + 1 or y1 > h + 1 or x1 <= x0 or y1 <= y0:
            raise DatasetError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {w}x{h} image or is empty")
        m = np.zeros((h, w), np.uint8)
        m[max(0, round(y0)) : max(round(y0) + 1, round(y1)), max(0, round(x0)) : max(round(x0) + 1, round(x1))] = 1
        return m

    return shape


def _polygon_points(poly: list[float], h: int, w: int) -> np.ndarray:
    pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        raise DatasetError("a polygon needs at least three points")
    if pts.min() < -1 or pts[:, 0].max() > w + 1 or pts[:, 1].max() > h + 1:
        raise DatasetError(f"a polygon lies outside the {w}x{h} image")
    return pts


def _polygons(polys: list[list[float]]) -> Shape:
    def shape(h: int, w: int) -> np.ndarray:
        m = np.zeros((h, w), np.uint8)
        for poly in polys:
            cv2.fillPoly(m, [np.round(_polygon_points(poly, h, w)).astype(np.int32)], 1)
        return m

    return shape


# -- COCO ---------------------------------------------------------------------------------------
def _coco_segmentation(seg: Any, bbox: Any) -> Shape:
    from pycocotools import mask as mask_utils  # RLE and polygons by the reference implementation

    def decode(h: int, w: int) -> np.ndarray:
        if isinstance(seg, dict):  # RLE, compressed (counts a string) or not (counts a list)
            if list(seg.get("size") or []) != [h, w]:
                raise DatasetError(f"an RLE mask of size {seg.get('size')} does not fit the {w}x{h} image")
            counts = seg["counts"]
            obj = mask_utils.frPyObjects(seg, h, w) if isinstance(counts, list) else \
                {"size": [h, w], "counts": counts.encode() if isinstance(counts, str) else counts}
        else:
            for poly in seg:
                _polygon_points(poly, h, w)
            obj = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        with warnings.catch_warnings():  # pycocotools' numpy-2 copy= notice, not the user's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(obj).astype(np.uint8)

    if isinstance(seg, dict) or (isinstance(seg, list) and seg):
        return _checked(decode)
    if bbox:  # no segmentation: the box is the mask
        x, y, bw, bh = (float(v) for v in bbox)
        return _box(x, y, x + bw, y + bh)
    raise DatasetError("an annotation has neither a segmentation nor a box")


def _checked(shape: Shape) -> Shape:
    """A malformed value in an annotation (a string for a number, a short list) is a DatasetError."""
    def run(h: int, w: int) -> np.ndarray:
        try:
            return shape(h, w)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            raise DatasetError(f"a malformed segmentation ({exc.__class__.__name__}: {exc})") from None

    return run


def read_coco(images_dir: Path, ann_file: Path) -> list[Annotated]:
    try:
        doc = json.loads(Path(ann_file).read_text(encoding="utf-8"))
        images = {int(im["id"]): im for im in doc["images"]}
        categories = {int(c["id"]): label_name(c["name"]) for c in doc.get("categories", [])}
        anns = doc.get("annotations", [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"the COCO file {ann_file} is malformed ({exc.__class__.__name__}: {exc}): fix or "
                           "re-export it; nothing was imported") from None
    out = {i: Annotated(images_dir / im["file_name"], size=(int(im["height"]), int(im["width"])))
           if "height" in im and "width" in im else Annotated(images_dir / im["file_name"])
           for i, im in images.items()}
    orphans = []
    for ann in anns:
        item = out.get(ann.get("image_id"))
        if item is None:  # an annotation of an image the file does not list: a broken export
            orphans.append(Annotated(Path(ann_file), error=f"annotation {ann.get('id')!r} is of image id "
                                     f"{ann.get('image_id')!r}, which the file's images do not list"))
            continue
        cls = categories.get(ann.get("category_id"))
        if cls is None:
            item.error = f"an annotation has the unknown category id {ann.get('category_id')!r}"
            continue
        try:
            item.shapes.append((cls, _coco_segmentation(ann.get("segmentation"), ann.get("bbox"))))
        except (DatasetError, TypeError, ValueError) as exc:
            item.error = f"annotation {ann.get('id')!r}: {exc}"
    return list(out.values()) + orphans


# -- Pascal VOC ---------------------------------------------------------------------------------
def read_voc(images_dir: Path, ann_dir: Path) -> list[Annotated]:
    """One record per XML file, plus every image in ``images_dir`` without one (a good image)."""
    out = []
    for xml in sorted(Path(ann_dir).glob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
            name = root.findtext("filename") or xml.with_suffix("").name
            item = Annotated(images_dir / name)
            size = root.find("size")
            if size is not None and size.findtext("width") and size.findtext("height"):
                item.size = (int(size.findtext("height")), int(size.findtext("width")))  # type: ignore[arg-type]
            for obj in root.iter("object"):
                box = obj.find("bndbox")
                if box is None:
                    raise DatasetError("an object has no bndbox")
                x0, y0, x1, y1 = (float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
                item.shapes.append((label_name(obj.findtext("name") or ""), _box(x0 - 1, y0 - 1, x1, y1)))  # 1-based
        except (ET.ParseError, ValueError, DatasetError) as exc:
            out.append(Annotated(images_dir / xml.with_suffix("").name, error=f"{xml.name} is malformed: {exc}"))
            continue
        out.append(item)
    named = {a.path.resolve() for a in out}
    return out + [Annotated(p) for p in _images(images_dir) if p.resolve() not in named]


def _images(folder: Path) -> list[Path]:
    if not Path(folder).is_dir():
        raise DatasetError(f"{folder} is not a folder of images")
    return list_images(Path(folder))[0]


# -- YOLO ---------------------------------------------------------------------------------------
def read_class_names(path: Path) -> list[str]:
    """classes.txt (a name per line) or a data.yaml ``names:`` list or mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the class names in {path}: {exc}") from None
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        import yaml  # PyYAML: a dependency of albumentations

        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise DatasetError(f"{path} is not valid YAML: {exc}") from None
        names = doc.get("names") if isinstance(doc, dict) else None
        names = [names[k] for k in sorted(names)] if isinstance(names, dict) else names
        if not isinstance(names, list):
            raise DatasetError(f"{path} has no 'names' list")
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_yolo(images_dir: Path, labels_dir: Path, names: list[str]) -> list[Annotated]:
    labels = [label_name(n) for n in names]
    out = []
    for img in _images(images_dir):
        txt = Path(labels_dir) / img.relative_to(images_dir).with_suffix(".txt")
        item = Annotated(img)
        out.append(item)
        if not txt.is_file():
            continue  # no label file: no annotation, a good image
        for n, line in enumerate(txt.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                cls, coords = int(parts[0]), [float(v) for v in parts[1:]]
            except ValueError:
                item.error = f"{txt.name} line {n} is not 'class x y w h' or 'class x1 y1 x2 y2 ...'"
                break
            if not 0 <= cls < len(labels):
                item.error = f"{txt.name} line {n}: class {cls} is not in the {len(labels)} class names"
                break
            if any(not -0.01 <= c <= 1.01 for c in coords) or len(coords) < 4 or (len(coords) > 4 and len(coords) % 2):
                item.error = f"{txt.name} line {n}: coordinates must be 4 (a box) or pairs (a polygon) within 0..1"
                break
            item.shapes.append((labels[cls], _yolo_shape(coords)))
    return out


def _yolo_shape(c: list[float]) -> Shape:
    def shape(h: int, w: int) -> np.ndarray:
        if len(c) == 4:  # normalised centre x, centre y, width, height
            cx, cy, bw, bh = c[0] * w, c[1] * h, c[2] * w, c[3] * h
            return _box(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)(h, w)
        return _polygons([[v * (w if i % 2 == 0 else h) for i, v in enumerate(c)]])(h, w)

    return shape


def detect_format(source: Path) -> str:
    """coco for a .json file, voc for a folder of .xml, yolo for a folder of .txt."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".json":
        return "coco"
    if source.is_dir():
        if any(source.glob("*.xml")):
            return "voc"
        if any(p.name != "classes.txt" for p in source.rglob("*.txt")):
            return "yolo"
    raise DatasetError(f"cannot tell the format of {source}: pass --format coco, voc or yolo")


def read_annotations(fmt: str | None, images_dir: Path, source: Path,
                     classes_file: Path | None = None) -> list[Annotated]:
    if not Path(source).exists():
        raise DatasetError(f"the annotations {source} do not exist")
    fmt = fmt or detect_format(source)
    if fmt == "coco":
        return read_coco(images_dir, source)
    if fmt == "voc":
        return read_voc(images_dir, source)
    if fmt == "yolo":
        if classes_file is None:  # Ultralytics and most tools put classes.txt beside the labels
            found = [p for p in (Path(source) / "classes.txt", Path(source).parent / "classes.txt",
                                 Path(source).parent / "data.yaml") if p.is_file()]
            if not found:
                raise DatasetError("YOLO labels need their class names: --classes classes.txt (or data.yaml)")
            classes_file = found[0]
        return read_yolo(images_dir, source, read_class_names(classes_file))
    raise DatasetError(f"annotation format {fmt!r} is not known: use {', '.join(FORMATS)}")
