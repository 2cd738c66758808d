"""Sample intake: new labelled images into a dataset folder (the standard layout), safely.

Each image is decode-checked before anything is written (undecodable bytes are never stored),
named by its sha256 (``images/<label>/<sha256>.<ext>``, so the same bytes are stored once),
written atomically, and appended to the manifest under a lock so concurrent writers (the
service's request threads, a CLI run) cannot lose each other's rows. Where a sample came from
(API or CLI, station, verdict id, note) goes into the manifest's ``source`` column as compact
JSON, which keeps the manifest format unchanged. New samples go to the train split by default:
the golden set used for promotion lives elsewhere and stays frozen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets.layout import IMAGES, INFO, SPLITS, Dataset, DatasetError, DatasetInfo, Sample, check_label, sha256_bytes
from inspection.atomic import write_bytes_atomic
from inspection.decode import DEFAULT_MAX_PIXELS, decode_image
from inspection.errors import ImageDecodeError
from inspection.filelock import file_lock

LOCK = ".intake.lock"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_EXT = {"jpeg": "jpg", "png": "png", "bmp": "bmp", "tiff": "tif", "webp": "webp", "gif": "gif"}
MAX_NOTE = 500
MAX_FIELD = 128


class UnknownClassError(DatasetError):
    """The label is not a class yet and creating one was not asked for."""


class SampleConflictError(DatasetError):
    """The same image is already stored under another label."""


@dataclass(frozen=True)
class SampleOrigin:
    via: str = "cli"  # "api", "verdict", "cli"
    note: str | None = None
    station: str | None = None
    verdict_id: int | None = None

    def to_source(self) -> str:
        def clean(text: str | None, limit: int) -> str | None:
            if text is None:
                return None
            text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
            return text[:limit] or None

        fields = {"via": self.via, "note": clean(self.note, MAX_NOTE), "station": clean(self.station, MAX_FIELD),
                  "verdict_id": self.verdict_id}
        return "intake " + json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True)


@dataclass(frozen=True)
class IntakeResult:
    sha256: str
    label: str
    path: str  # relative to the dataset folder
    split: str
    created: bool  # False: these exact bytes were already stored (dedup)
    new_class: bool = False  # this sample created its label as a class


class SampleIntake:
    """Adds samples to the dataset folder ``root`` (created on first use).

    ``known_classes`` (for example the serving model's classes) count as existing classes next
    to the folder's own; a fresh folder starts with them, ``pass_classes`` marking the good ones.
    """

    def __init__(self, root: str | Path, *, known_classes: Sequence[str] = (), pass_classes: Sequence[str] = ("good",),
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.root = Path(root)
        self.known_classes = tuple(check_label(c) for c in known_classes)
        self.pass_classes = tuple(pass_classes)
        self.max_pixels = max_pixels

    def _load(self) -> Dataset:
        if (self.root / INFO).is_file():
            return Dataset.load(self.root)
        classes = self.known_classes
        return Dataset(self.root, DatasetInfo(classes, tuple(c for c in self.pass_classes if c in classes)), [])

    def add(self, data: bytes, label: str, *, new_class: bool = False, split: str = "train",
            origin: SampleOrigin | None = None) -> IntakeResult:
        """Store one image; raises DatasetError (UnknownClassError, SampleConflictError) or ImageDecodeError."""
        self._check_args(label, split)
        with file_lock(self.root / LOCK):
            ds = self._load()
            result = self._add_one(ds, data, label, new_class, split, origin or SampleOrigin())
            if result.created:
                ds.save()
        return result

    def add_files(self, paths: Iterable[Path], label: str, *, new_class: bool = False, split: str = "train",
                  origin: SampleOrigin | None = None) -> list[tuple[Path, IntakeResult | str]]:
        """Store many files under one lock and one manifest write; a bad file is listed, not fatal."""
        self._check_args(label, split)
        out: list[tuple[Path, IntakeResult | str]] = []
        with file_lock(self.root / LOCK):
            ds = self._load()
            for path in paths:
                try:
                    data = path.read_bytes()
                    out.append((path, self._add_one(ds, data, label, new_class, split, origin or SampleOrigin())))
                except OSError as exc:
                    out.append((path, f"cannot read: {exc.strerror or exc}"))
                except (ImageDecodeError, DatasetError) as exc:
                    out.append((path, str(exc)))
            if any(isinstance(r, IntakeResult) and r.created for _, r in out):
                ds.save()
        return out

    @staticmethod
    def _check_args(label: str, split: str) -> None:
        check_label(label)
        if split not in SPLITS:
            raise DatasetError(f"split {split!r} is not one of {', '.join(SPLITS)}")

    def _add_one(self, ds: Dataset, data: bytes, label: str, new_class: bool, split: str,
                 origin: SampleOrigin) -> IntakeResult:
        classes = tuple(dict.fromkeys((*ds.info.classes, *self.known_classes)))
        created_class = False
        if label not in classes:
            if not new_class:
                raise UnknownClassError(
                    f"{label!r} is not a known class ({', '.join(classes) or 'none yet'}): check the spelling, "
                    "or ask for a new defect class explicitly (new_class=true, --new-class)")
            created_class = True
        if not data:
            raise ImageDecodeError("the upload is empty: send the image bytes")
        _, info = decode_image(data, max_pixels=self.max_pixels)  # raises before anything is stored
        digest = sha256_bytes(data)
        for s in ds.samples:
            if s.sha256 == digest:
                if s.label != label:
                    raise SampleConflictError(
                        f"this image is already stored as {s.label!r} ({s.path}): fix that sample's label in "
                        f"{ds.root / 'manifest.csv'} instead of adding it twice")
                return IntakeResult(digest, label, s.path, s.split, created=False)
        rel = f"{IMAGES}/{label}/{digest}.{_EXT.get(info.format, 'bin')}"
        write_bytes_atomic(ds.root / rel, data)
        if classes != ds.info.classes or created_class:
            new_classes = (*classes, label) if created_class else classes
            ds.info = DatasetInfo(new_classes, tuple(c for c in self.pass_classes if c in new_classes) or
                                  ds.info.pass_classes, ds.info.extra)
        ds.samples.append(Sample(path=rel, label=label, split=split, sha256=digest, source=origin.to_source()))
        return IntakeResult(digest, label, rel, split, created=True, new_class=created_class)


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus image files found under folders (sorted, recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out
