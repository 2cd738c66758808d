"""Sample intake: new labelled images into a dataset folder (the standard layout), safely.

Each image is decode-checked before anything is written (undecodable bytes are never stored),
named by its sha256 (``images/<label>/<sha256>.<ext>``, so the same bytes are stored once),
written atomically, and appended to the manifest under a lock so concurrent writers (the
service's request threads, a CLI run) cannot lose each other's rows. A change writes several files
(images, ``dataset.json``, the manifest), so it is journalled first and the manifest is the
commit point: after a crash the next intake finishes a change the manifest shows, and removes
the images and restores the ``dataset.json`` of one it does not, so a sample the caller was not
told about never half-exists. Where a sample came from
(API or CLI, station, verdict id, note) goes into the manifest's ``source`` column as compact
JSON, which keeps the manifest format unchanged. New samples go to the train split by default:
the golden set used for promotion lives elsewhere and stays frozen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets.layout import IMAGES, INFO, SPLITS, Dataset, DatasetError, DatasetInfo, Sample, check_label, sha256_bytes
from inspection.atomic import write_bytes_atomic, write_text_atomic
from inspection.decode import DEFAULT_MAX_PIXELS, decode_image
from inspection.errors import ImageDecodeError
from inspection.filelock import file_lock
from inspection.imageinfo import IMAGE_SUFFIXES

LOCK = ".intake.lock"
JOURNAL = ".intake-journal.json"
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
        """The dataset as committed (hold the lock): an interrupted change is settled first."""
        self._recover()
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
            journal = self._begin(ds)
            result = self._add_one(ds, data, label, new_class, split, origin or SampleOrigin(), journal)
            self._commit(ds, journal)
        return result

    def add_files(self, paths: Iterable[Path], label: str, *, new_class: bool = False, split: str = "train",
                  origin: SampleOrigin | None = None) -> list[tuple[Path, IntakeResult | str]]:
        """Store many files under one lock and one manifest write; a bad file is listed, not fatal."""
        self._check_args(label, split)
        out: list[tuple[Path, IntakeResult | str]] = []
        with file_lock(self.root / LOCK):
            ds = self._load()
            journal = self._begin(ds)
            for path in paths:
                try:
                    data = path.read_bytes()
                    out.append((path, self._add_one(ds, data, label, new_class, split, origin or SampleOrigin(),
                                                    journal)))
                except OSError as exc:
                    out.append((path, f"cannot read: {exc.strerror or exc}"))
                except (ImageDecodeError, DatasetError) as exc:
                    out.append((path, str(exc)))
            self._commit(ds, journal)
        return out

    # -- the journal: the manifest write commits a change ------------------------------------------
    def _begin(self, ds: Dataset) -> dict[str, Any]:
        info = self.root / INFO
        return {"info": info.read_text() if info.is_file() else None, "images": []}

    def _note_image(self, journal: dict[str, Any], rel: str, digest: str) -> None:
        """Journal an image before it is written, so a crash after the write can undo it."""
        journal["images"].append({"path": rel, "sha256": digest})
        write_text_atomic(self.root / JOURNAL, json.dumps(journal))

    def _commit(self, ds: Dataset, journal: dict[str, Any]) -> None:
        if journal["images"]:
            ds.save()  # dataset.json, then the manifest: the commit point
        (self.root / JOURNAL).unlink(missing_ok=True)

    def _recover(self) -> None:
        path = self.root / JOURNAL
        if not path.is_file():
            return
        try:
            journal = json.loads(path.read_text())
        except (OSError, ValueError):
            journal = {"info": None, "images": []}  # torn while written: no image was written after it
        listed = {s.path for s in Dataset.load(self.root).samples} if (self.root / "manifest.csv").is_file() \
            else set()
        images = journal.get("images") or []
        if images and not all(im["path"] in listed for im in images):  # not committed: undo it
            for im in images:
                if im["path"] not in listed:
                    (self.root / im["path"]).unlink(missing_ok=True)
            if journal.get("info") is not None:
                write_text_atomic(self.root / INFO, journal["info"])
            elif not listed:
                (self.root / INFO).unlink(missing_ok=True)
        path.unlink(missing_ok=True)

    @staticmethod
    def _check_args(label: str, split: str) -> None:
        check_label(label)
        if split not in SPLITS:
            raise DatasetError(f"split {split!r} is not one of {', '.join(SPLITS)}")

    def _add_one(self, ds: Dataset, data: bytes, label: str, new_class: bool, split: str,
                 origin: SampleOrigin, journal: dict[str, Any]) -> IntakeResult:
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
        self._note_image(journal, rel, digest)
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
