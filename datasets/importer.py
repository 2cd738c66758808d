"""Build the standard layout from a folder of class subfolders or from a CSV of path,label rows.

Images are copied (the source is never modified), checked with the product's decoder, and
hashed; files that cannot be decoded are listed and left out. The dataset folder appears in
one rename when complete. Splits are left unassigned: run ``split`` next.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets.layout import IMAGES, Dataset, DatasetError, DatasetInfo, Sample, check_label
from inspection.atomic import atomic_dir
from inspection.camera.folder import IMAGE_EXTENSIONS, list_images
from inspection.decode import decode_image
from inspection.errors import ImageDecodeError


@dataclass
class ImportResult:
    dataset: Dataset
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)


def _from_folders(src: Path) -> tuple[list[tuple[Path, str, str]], list[tuple[str, str]]]:
    entries, skipped = [], []
    folders = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{src} has no class subfolders: put each class's images in SRC/<label>/, "
                           "or give a CSV of path,label")
    for folder in folders:
        label = check_label(folder.name)
        images, others = list_images(folder)
        entries += [(p, label, "") for p in images]
        skipped += [(str(p), "not an image file") for p in others]
    skipped += [(str(p), "not in a class folder") for p in sorted(src.iterdir()) if p.is_file()
                and not p.name.startswith(".")]
    return entries, skipped


def _from_csv(src: Path) -> tuple[list[tuple[Path, str, str]], list[tuple[str, str]]]:
    try:
        with src.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {src}: {exc}") from None
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if "path" in header and "label" in header:
        ip, il, isp = header.index("path"), header.index("label"), header.index("split") if "split" in header else None
        rows = rows[1:]
    else:
        ip, il, isp = 0, 1, None
    entries = []
    for n, row in enumerate(rows, start=2 if header and "path" in header else 1):
        if len(row) <= max(ip, il):
            raise DatasetError(f"{src} line {n}: expected path,label, got {row}")
        path = Path(row[ip].strip())
        path = path if path.is_absolute() else src.parent / path
        split = row[isp].strip() if isp is not None and isp < len(row) else ""
        entries.append((path, check_label(row[il].strip()), split))
    if not entries:
        raise DatasetError(f"{src} lists no images: write one 'path,label' row per image")
    return entries, []


def import_dataset(src: Path, out: Path, *, pass_classes: Sequence[str] | None = None,
                   overwrite: bool = False) -> ImportResult:
    """Import ``src`` (a folder of class subfolders, or a .csv of path,label[,split]) into ``out``."""
    src, out = Path(src), Path(out)
    if not src.exists():
        raise DatasetError(f"{src} does not exist")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} already exists and is not empty: choose a new folder or allow overwriting (--force)")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DatasetError(f"the output {out} must not be inside the source {src}")
    entries, skipped = _from_csv(src) if src.is_file() else _from_folders(src)
    labels = sorted({label for _, label, _ in entries})
    passes = tuple(pass_classes) if pass_classes is not None else tuple(c for c in ("good",) if c in labels)
    for c in passes:
        if c not in labels:
            raise DatasetError(f"pass class {c!r} is not one of the labels {labels}")
    samples: list[Sample] = []
    used: set[str] = set()
    with atomic_dir(out) as tmp:
        for path, label, split in entries:
            try:
                data = path.read_bytes()
                decode_image(data, color="gray", min_size=(1, 1))
            except OSError as exc:
                skipped.append((str(path), f"cannot read: {exc.strerror or exc}"))
                continue
            except ImageDecodeError as exc:
                skipped.append((str(path), str(exc)))
                continue
            sha = hashlib.sha256(data).hexdigest()
            suffix = path.suffix.lower() if path.suffix.lower() in IMAGE_EXTENSIONS else ".img"
            rel = f"{IMAGES}/{label}/{path.stem}{suffix}"
            if rel in used:  # same file name from two subfolders or CSV rows
                rel = f"{IMAGES}/{label}/{path.stem}-{sha[:10]}{suffix}"
            k = 2
            while rel in used:
                rel, k = f"{IMAGES}/{label}/{path.stem}-{sha[:10]}-{k}{suffix}", k + 1
            used.add(rel)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
            samples.append(Sample(path=rel, label=label, split=split, sha256=sha, source=str(path)))
        if not samples:
            raise DatasetError(f"no readable images in {src}: nothing imported")
        info = DatasetInfo(classes=tuple(labels), pass_classes=passes, extra={"imported_from": str(src)})
        Dataset(tmp, info, samples).save()
    return ImportResult(Dataset.load(out), skipped)
