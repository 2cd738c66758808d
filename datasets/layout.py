"""The one on-disk layout for labelled images.

    DATASET/
      dataset.json              {"classes": [...], "pass_classes": ["good"], "format": 1, ...}
      manifest.csv              path,label,split,sha256,mask,source,fold[,part,lot,...]   (one row per image)
      images/<label>/<file>     a folder per class: torchvision's ImageFolder reads images/
      masks/<label>/<file>.png  optional pixel masks of defects (255 = defect)

Paths in the manifest are relative to DATASET and use forward slashes. ``split`` is
"train", "val", "test" or "" (not yet assigned). ``mask`` and ``source`` may be empty. ``fold``
is a cross-validation fold id ("0", "1", ...) or empty. Any other column (``part``, ``lot``,
``camera``, ...) is kept as it came, so splits and folds can be grouped by it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from inspection.atomic import write_text_atomic
from inspection.errors import DefectscopeError

MANIFEST = "manifest.csv"
INFO = "dataset.json"
IMAGES = "images"
MASKS = "masks"
COLUMNS = ("path", "label", "split", "sha256", "mask", "source", "fold")
SPLITS = ("train", "val", "test")
LAYOUT_FORMAT = 1
# Labels become folder names and API parameters: letters, digits, _ and - only, no dots.
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class DatasetError(DefectscopeError):
    """A dataset folder does not follow the layout, or a label is unsafe."""


def check_label(label: str) -> str:
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise DatasetError(
            f"label {label!r} is not allowed: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return label


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Sample:
    path: str
    label: str
    split: str = ""
    sha256: str = ""
    mask: str = ""
    source: str = ""
    fold: str = ""
    extra: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)  # the other columns

    def column(self, name: str) -> str:
        """A manifest column by name (standard or extra); "" when the row has none."""
        return str(getattr(self, name)) if name in COLUMNS else self.extra.get(name, "")


@dataclass(frozen=True)
class DatasetInfo:
    classes: tuple[str, ...]
    pass_classes: tuple[str, ...] = ("good",)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"format": LAYOUT_FORMAT, "classes": list(self.classes),
             "pass_classes": list(self.pass_classes), **self.extra},
            indent=2,
        )


@dataclass
class Dataset:
    root: Path
    info: DatasetInfo
    samples: list[Sample]

    @classmethod
    def load(cls, root: str | Path) -> Dataset:
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise DatasetError(
                f"{root} has no {MANIFEST}: create one with 'defectscope dataset import' or 'dataset synth'"
            )
        with (root / MANIFEST).open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(COLUMNS[:2]) - set(reader.fieldnames or ())
            if missing:
                raise DatasetError(f"{root / MANIFEST} lacks columns {sorted(missing)}")
            others = [c for c in reader.fieldnames or () if c not in COLUMNS]
            samples = [Sample(**{k: (row.get(k) or "") for k in COLUMNS},
                              extra={c: row.get(c) or "" for c in others}) for row in reader]
        if (root / INFO).is_file():
            raw = json.loads((root / INFO).read_text())
            info = DatasetInfo(
                classes=tuple(raw["classes"]), pass_classes=tuple(raw.get("pass_classes", ())),
                extra={k: v for k, v in raw.items() if k not in ("format", "classes", "pass_classes")},
            )
        else:
            labels = sorted({s.label for s in samples})
            info = DatasetInfo(tuple(labels), tuple(c for c in ("good",) if c in labels))
        return cls(root, info, samples)

    def save(self) -> None:
        """Write dataset.json and manifest.csv atomically (images are written by the caller)."""
        self.root.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        others = sorted({k for s in self.samples for k in s.extra} - set(COLUMNS))
        writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, *others], lineterminator="\n")
        writer.writeheader()
        for s in self.samples:
            writer.writerow({**{k: getattr(s, k) for k in COLUMNS}, **{k: s.extra.get(k, "") for k in others}})
        write_text_atomic(self.root / INFO, self.info.to_json())
        write_text_atomic(self.root / MANIFEST, buf.getvalue())

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def abspath(self, sample: Sample) -> Path:
        return self.root / sample.path

    def class_counts(self, split: str | None = None) -> Counter[str]:
        return Counter(s.label for s in self.samples if split is None or s.split == split)

    def fingerprint(self) -> str:
        """Stable hash of (sha256, label, split) rows: names the data a model was trained on."""
        h = hashlib.sha256()
        for row in sorted((s.sha256, s.label, s.split) for s in self.samples):
            h.update("\t".join(row).encode() + b"\n")
        return h.hexdigest()[:16]

    def with_samples(self, samples: Iterable[Sample]) -> Dataset:
        return replace(self, samples=list(samples))
