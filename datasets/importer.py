"""Build the standard layout from the forms data arrives in, with its masks and annotations.

Sources:

* a folder of class subfolders (``SRC/<label>/**/*.jpg``), with masks in a folder that mirrors
  them (``--masks DIR``, ``DIR/<label>/<stem>.png``; a ``masks/`` folder beside the class folders
  is found by itself);
* a CSV of ``path,label`` with optional ``split`` and ``mask`` columns; every other column
  (``part``, ``lot``, ...) is kept in the manifest, for grouped splits;
* images with annotation files from labelling tools (``--annotations``, COCO, VOC or YOLO:
  ``datasets.annotations``), rasterised into masks.

``--meta CSV`` adds columns from another CSV, matched on the image's path.
Images are copied (the source is never modified), decode-checked with the product's decoder and
hashed; masks are checked (same size as their image; binary after thresholding at 128) and stored
as PNG under ``masks/<label>/``. An image that cannot be decoded is listed with its reason and left
out. A labelling problem (a mask that does not fit, a bad annotation, an annotated image that is
not there) is an error: the import lists every one and writes nothing, because a dataset with
silently dropped defects trains a model that passes them; ``skip_bad`` leaves those images out
instead. The dataset folder appears in one rename when complete, so a failed import writes nothing.
Splits are left as the source gave them (or unassigned): run ``split`` next.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from datasets.annotations import Annotated, read_annotations
from datasets.layout import IMAGES, MASKS, Dataset, DatasetError, DatasetInfo, Sample, check_label
from inspection.atomic import atomic_dir
from inspection.camera.folder import IMAGE_EXTENSIONS, list_images
from inspection.decode import decode_image
from inspection.errors import ImageDecodeError

MAX_LISTED = 30  # problems named in the error; the count says how many more
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


@dataclass
class ImportResult:
    dataset: Dataset
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    masks: int = 0  # images imported with a defect mask


@dataclass
class _Entry:
    path: Path
    label: str
    split: str = ""
    mask_file: Path | None = None
    annotated: Annotated | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _mask_in(folder: Path | None, label: str, stem: str) -> Path | None:
    if folder is None:
        return None
    for suffix in MASK_SUFFIXES:
        p = folder / label / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _from_folders(src: Path, masks: Path | None) -> tuple[list[_Entry], list[tuple[str, str]], Path | None]:
    entries, skipped = [], []
    if masks is None and (src / MASKS).is_dir():
        masks = src / MASKS  # masks/<label>/<stem>.png beside the class folders
    folders = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and (masks is None or p.resolve() != masks.resolve()))
    if not folders:
        raise DatasetError(f"{src} has no class subfolders: put each class's images in SRC/<label>/, "
                           "or give a CSV of path,label")
    for folder in folders:
        label = check_label(folder.name)
        images, others = list_images(folder)
        entries += [_Entry(p, label, mask_file=_mask_in(masks, label, p.stem)) for p in images]
        skipped += [(str(p), "not an image file") for p in others]
    skipped += [(str(p), "not in a class folder") for p in sorted(src.iterdir()) if p.is_file()
                and not p.name.startswith(".")]
    return entries, skipped, masks


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "path" not in header:
        if rows and len(rows[0]) >= 2:  # no header: path,label[,split]
            return ["path", "label", "split"][: len(rows[0])], [dict(zip(["path", "label", "split"], r, strict=False))
                                                               for r in rows]
        raise DatasetError(f"{path} needs a header with a 'path' column (and 'label')")
    return header, [dict(zip(header, (c.strip() for c in r), strict=False)) for r in rows[1:]]


def _from_csv(src: Path, masks: Path | None) -> list[_Entry]:
    header, rows = _read_csv(src)
    if "label" not in header:
        raise DatasetError(f"{src} needs a 'label' column")
    entries = []
    standard = {"path", "label", "split", "mask"}
    for n, row in enumerate(rows, start=2):
        if not row.get("path") or not row.get("label"):
            raise DatasetError(f"{src} line {n}: expected path,label, got {row}")
        path = Path(row["path"])
        path = path if path.is_absolute() else src.parent / path
        label = check_label(row["label"])
        mask = Path(row["mask"]) if row.get("mask") else None
        mask = (mask if mask.is_absolute() else src.parent / mask) if mask else _mask_in(masks, label, path.stem)
        entries.append(_Entry(path, label, row.get("split", ""), mask_file=mask,
                              extra={k: v for k, v in row.items() if k not in standard and v}))
    if not entries:
        raise DatasetError(f"{src} lists no images: write one 'path,label' row per image")
    return entries


def _merge_meta(entries: list[_Entry], meta: Path, root: Path) -> None:
    """Columns of ``meta`` (matched on path, relative to ``root`` or the CSV's folder) onto entries."""
    _, rows = _read_csv(meta)
    by_path: dict[Path, dict[str, str]] = {}
    for row in rows:
        p = Path(row.get("path", ""))
        for base in (root, meta.parent):
            by_path[(p if p.is_absolute() else base / p).resolve()] = row
    for e in entries:
        row = by_path.get(e.path.resolve())
        if row:
            e.extra.update({k: v for k, v in row.items() if k not in ("path", "label", "split", "mask") and v})


def _binary_mask(e: _Entry, h: int, w: int) -> np.ndarray | None:
    if e.mask_file is None:
        return None
    mask = cv2.imread(str(e.mask_file), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DatasetError(f"the mask {e.mask_file} cannot be read")
    if mask.shape != (h, w):
        raise DatasetError(f"the mask {e.mask_file.name} is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h}")
    return np.where(mask >= 128, 255, 0).astype(np.uint8)


def import_dataset(src: Path, out: Path, *, pass_classes: Sequence[str] | None = None, overwrite: bool = False,
                   masks: Path | None = None, meta: Path | None = None, annotations: Path | None = None,
                   ann_format: str | None = None, classes_file: Path | None = None,
                   good_label: str = "good", skip_bad: bool = False) -> ImportResult:
    """Import ``src`` into ``out``; see the module docstring for the forms ``src`` may take."""
    src, out = Path(src), Path(out)
    if not src.exists():
        raise DatasetError(f"{src} does not exist")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} already exists and is not empty: choose a new folder or allow overwriting (--force)")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DatasetError(f"the output {out} must not be inside the source {src}")
    skipped: list[tuple[str, str]] = []
    if annotations is not None:
        check_label(good_label)
        entries = [_Entry(a.path, good_label, annotated=a) for a in
                   read_annotations(ann_format, src, Path(annotations), classes_file)]
    elif src.is_file():
        entries = _from_csv(src, masks)
    else:
        entries, skipped, masks = _from_folders(src, masks)
    if meta is not None:
        _merge_meta(entries, Path(meta), src if src.is_dir() else src.parent)
    with atomic_dir(out) as tmp:  # the dataset appears whole, or not at all
        bad: list[tuple[str, str]] = []
        samples, n_masks = _write(entries, tmp, skipped, bad, good_label)
        if bad and not skip_bad:
            listed = "\n".join(f"  {path}: {reason}" for path, reason in bad[:MAX_LISTED])
            more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
            problems = f"{len(bad)} labelling problem{'s' * (len(bad) != 1)}"
            raise DatasetError(f"{problems}, nothing imported (fix them, or pass --skip-bad to leave those images "
                               f"out):\n{listed}{more}")
        skipped += bad
        if not samples:
            raise DatasetError(f"no readable images among the {len(entries)} found: nothing imported")
        labels = sorted({s.label for s in samples})
        passes = tuple(pass_classes) if pass_classes is not None else tuple(c for c in (good_label,) if c in labels)
        for c in passes:
            if c not in labels:
                raise DatasetError(f"pass class {c!r} is not one of the labels {labels}")
        Dataset(tmp, DatasetInfo(tuple(labels), passes, {"imported_from": str(src)}), samples).save()
    return ImportResult(Dataset.load(out), skipped, n_masks)


def _write(entries: list[_Entry], tmp: Path, skipped: list[tuple[str, str]], bad: list[tuple[str, str]],
           good_label: str) -> tuple[list[Sample], int]:
    """Copy images (and write masks) into ``tmp``; the rows for them. Undecodable images go to
    ``skipped``, labelling problems to ``bad``."""
    samples: list[Sample] = []
    used: set[str] = set()
    n_masks = 0
    for e in entries:
        if e.annotated is not None and e.annotated.error:
            bad.append((str(e.path), e.annotated.error))
            continue
        try:
            data = e.path.read_bytes()
            image, _ = decode_image(data, color="gray", min_size=None)
        except OSError as exc:
            where = bad if e.annotated is not None else skipped  # an annotated image that is missing
            where.append((str(e.path), f"cannot read: {exc.strerror or exc}"))
            continue
        except ImageDecodeError as exc:
            skipped.append((str(e.path), str(exc)))
            continue
        h, w = image.shape[:2]
        try:
            label, mask, classes = e.label, _binary_mask(e, h, w), []
            if e.annotated is not None:
                label, mask, classes = e.annotated.label_and_mask(h, w, good_label)
                label = check_label(label)
        except DatasetError as exc:
            bad.append((str(e.path), str(exc)))
            continue
        sha = hashlib.sha256(data).hexdigest()
        suffix = e.path.suffix.lower() if e.path.suffix.lower() in IMAGE_EXTENSIONS else ".img"
        rel = f"{IMAGES}/{label}/{e.path.stem}{suffix}"
        if rel in used:  # same file name from two subfolders or CSV rows
            rel = f"{IMAGES}/{label}/{e.path.stem}-{sha[:10]}{suffix}"
        k = 2
        while rel in used:
            rel, k = f"{IMAGES}/{label}/{e.path.stem}-{sha[:10]}-{k}{suffix}", k + 1
        used.add(rel)
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
        mask_rel = ""
        if mask is not None and mask.any():
            mask_rel = f"{MASKS}/{label}/{Path(rel).stem}.png"
            (tmp / mask_rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp / mask_rel), mask)
            n_masks += 1
        extra = dict(e.extra)
        if len(classes) > 1:
            extra["classes"] = ";".join(classes)
        samples.append(Sample(path=rel, label=label, split=e.split, sha256=sha, mask=mask_rel, source=str(e.path),
                              extra=extra))
    return samples, n_masks
