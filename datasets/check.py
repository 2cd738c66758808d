"""Check a dataset before training: every problem a user must fix is an error, the rest warnings.

Errors: missing or unreadable images, files changed since the manifest was written, the same
image in two splits (it leaks from train into test) or under two labels, labels that are not
in dataset.json or do not match their class folder, bad split names, broken masks.
Warnings: exact duplicates within one split, no split assigned yet, a class missing from a
split, strong class imbalance, tiny images, images on disk that the manifest does not list.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from datasets.groups import key_function, remembered_group_by
from datasets.layout import IMAGES, SPLITS, Dataset, DatasetError, Sample, check_label
from inspection.camera.folder import list_images
from inspection.decode import decode_image
from inspection.errors import ImageDecodeError

MIN_SIDE = 32
_Add = Callable[..., None]
_SHOW = 5  # paths listed per issue


@dataclass(frozen=True)
class Issue:
    level: str  # "error" or "warning"
    code: str
    message: str
    paths: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "code": self.code, "message": self.message, "paths": list(self.paths)}


@dataclass
class CheckReport:
    root: str
    samples: int
    counts: dict[str, dict[str, int]]  # label -> split ("" = unassigned) -> count
    sizes: Counter[tuple[int, int]]  # (width, height) -> count
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "samples": self.samples, "ok": self.ok, "counts": self.counts,
                "sizes": {f"{w}x{h}": c for (w, h), c in self.sizes.most_common()},
                "issues": [i.to_dict() for i in self.issues]}


@dataclass(frozen=True)
class _FileResult:
    sha256: str = ""
    size: tuple[int, int] | None = None
    error: str = ""


def _inspect_file(path: str) -> _FileResult:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return _FileResult(error=f"cannot read: {exc.strerror or exc}")
    sha = hashlib.sha256(data).hexdigest()
    try:
        # a reduced decode still runs the whole entropy decoder, so corrupt data is caught, at 1/8 the cost
        _, info = decode_image(data, color="gray", min_size=(1, 1))
    except ImageDecodeError as exc:
        return _FileResult(sha, error=str(exc))
    return _FileResult(sha, (info.width, info.height))


def _safe_rel(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path


def _check_groups(samples: list[Sample], ds: Dataset, add: _Add) -> None:
    """A group (part, lot) the dataset was split by must not straddle splits or folds: that leaks."""
    group_by = remembered_group_by(ds)
    if not group_by:
        return
    keyed = [s for s in samples if group_by.startswith("regex:") or s.column(group_by)]
    try:
        key = key_function(group_by, keyed)
        where: dict[str, set[str]] = defaultdict(set)
        for s in keyed:
            where[key(s)].add(f"fold {s.fold}" if s.fold else s.split)
    except DatasetError as exc:
        add("error", "group-leak", f"the images cannot be grouped by {group_by}: {exc}", [])
        return
    split_up = sorted(g.split(":", 1)[1] for g, places in where.items() if len(places - {""}) > 1)
    if split_up:
        add("error", "group-leak", f"{len(split_up)} {group_by} groups lie in two splits or folds (their images "
            "leak into the test figures): run 'defectscope dataset split --reassign'", split_up[:_SHOW])


def check_dataset(ds: Dataset, *, workers: int | None = None, imbalance_ratio: float = 10.0) -> CheckReport:
    issues: list[Issue] = []

    def add(level: str, code: str, message: str, paths: list[str] | tuple[str, ...] = ()) -> None:
        issues.append(Issue(level, code, message, tuple(paths)))

    samples = ds.samples
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in samples:
        counts[s.label][s.split] += 1

    for label in sorted({s.label for s in samples}):
        try:
            check_label(label)
        except DatasetError as exc:
            add("error", "bad-label", str(exc))
    unknown = sorted({s.label for s in samples} - set(ds.info.classes))
    if unknown:
        add("error", "unknown-label", f"labels {unknown} are not in dataset.json classes {list(ds.info.classes)}: "
            "add them there or fix the manifest")
    empty = [c for c in ds.info.classes if c not in counts]
    if empty:
        add("warning", "empty-class", f"classes {empty} have no images")
    missing_pass = [c for c in ds.info.pass_classes if c not in ds.info.classes]
    if missing_pass:
        add("error", "bad-pass-class", f"pass classes {missing_pass} are not among the classes")

    seen = Counter(s.path for s in samples)
    dup_rows = sorted(p for p, c in seen.items() if c > 1)
    if dup_rows:
        add("error", "repeated-row", f"{len(dup_rows)} paths appear more than once in the manifest", dup_rows[:_SHOW])
    unsafe = [s.path for s in samples if not _safe_rel(s.path)]
    if unsafe:
        add("error", "unsafe-path", f"{len(unsafe)} manifest paths are absolute or leave the dataset folder",
            unsafe[:_SHOW])
    misplaced = [s.path for s in samples if _safe_rel(s.path) and PurePosixPath(s.path).parts[:2] != (IMAGES, s.label)]
    if misplaced:
        add("error", "label-folder", f"{len(misplaced)} images are not in images/<their label>/, so a folder-based "
            "loader would read another label: move them or fix the manifest", misplaced[:_SHOW])
    bad_split = sorted({s.split for s in samples if s.split and s.split not in SPLITS})
    if bad_split:
        add("error", "bad-split", f"split names {bad_split} are not one of {list(SPLITS)}")
    unassigned = [s.path for s in samples if not s.split and not s.fold]
    if unassigned:
        add("warning", "no-split", f"{len(unassigned)} images have neither a split nor a fold: run 'defectscope "
            "dataset split'")
    _check_groups(samples, ds, add)

    checkable = [s for s in samples if _safe_rel(s.path)]
    n_workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(n_workers) as pool:
        results = list(pool.map(_inspect_file, [str(ds.abspath(s)) for s in checkable]))
        masks = [s for s in checkable if s.mask]
        mask_results = list(pool.map(_inspect_file, [str(ds.root / s.mask) for s in masks if _safe_rel(s.mask)]))
    sizes: Counter[tuple[int, int]] = Counter()
    unreadable, changed, no_hash, tiny = [], [], [], []
    by_hash: dict[str, list[Sample]] = defaultdict(list)
    size_of: dict[str, tuple[int, int]] = {}
    for s, r in zip(checkable, results, strict=True):
        if r.error or r.size is None:
            unreadable.append(f"{s.path}: {r.error}")
            continue
        sizes[r.size] += 1
        size_of[s.path] = r.size
        by_hash[r.sha256].append(s)
        if not s.sha256:
            no_hash.append(s.path)
        elif s.sha256 != r.sha256:
            changed.append(s.path)
        if min(r.size) < MIN_SIDE:
            tiny.append(s.path)
    if unreadable:
        add("error", "unreadable", f"{len(unreadable)} images are missing or cannot be decoded: replace or remove "
            "them", unreadable[:_SHOW])
    if changed:
        add("error", "changed", f"{len(changed)} images differ from the sha256 in the manifest (changed after "
            "import): re-import the dataset", changed[:_SHOW])
    if no_hash:
        add("warning", "no-sha256", f"{len(no_hash)} manifest rows have no sha256: duplicates cannot be tracked",
            no_hash[:_SHOW])
    if tiny:
        add("warning", "tiny", f"{len(tiny)} images are smaller than {MIN_SIDE} px on a side", tiny[:_SHOW])
    _duplicates(by_hash, add)
    _balance(ds, counts, imbalance_ratio, add)

    bad_masks = []
    for s, r in zip([m for m in masks if _safe_rel(m.mask)], mask_results, strict=True):
        if r.error:
            bad_masks.append(f"{s.mask}: {r.error}")
        elif r.size is not None and s.path in size_of and r.size != size_of[s.path]:
            bad_masks.append(f"{s.mask}: {r.size[0]}x{r.size[1]} but the image is "
                             f"{size_of[s.path][0]}x{size_of[s.path][1]}")
    if bad_masks:
        add("error", "bad-mask", f"{len(bad_masks)} masks are missing, unreadable or the wrong size", bad_masks[:_SHOW])

    if (ds.root / IMAGES).is_dir():
        listed = {s.path for s in samples}
        images, _ = list_images(ds.root / IMAGES)
        extra = [p.relative_to(ds.root).as_posix() for p in images]
        extra = [p for p in extra if p not in listed]
        if extra:
            add("warning", "unlisted", f"{len(extra)} images under images/ are not in the manifest (not used): "
                "re-import to include them", extra[:_SHOW])
    return CheckReport(str(ds.root), len(samples), {k: dict(v) for k, v in sorted(counts.items())}, sizes, issues)


def _duplicates(by_hash: dict[str, list[Sample]], add: _Add) -> None:
    leaks, conflicts, plain = [], [], []
    for group in by_hash.values():
        if len(group) < 2:
            continue
        paths = " = ".join(s.path for s in group)
        if len({s.label for s in group}) > 1:
            conflicts.append(paths)
        elif len({s.split for s in group if s.split}) > 1:
            leaks.append(paths)
        else:
            plain.append(paths)
    if leaks:
        add("error", "split-leak", f"{len(leaks)} identical images sit in different splits (test leaks into "
            "train): remove the copies, or run 'defectscope dataset split --reassign'", leaks[:_SHOW])
    if conflicts:
        add("error", "label-conflict", f"{len(conflicts)} identical images carry different labels: keep one",
            conflicts[:_SHOW])
    if plain:
        add("warning", "duplicate", f"{len(plain)} sets of exact duplicate images (they weigh double in training)",
            plain[:_SHOW])


def _balance(ds: Dataset, counts: dict[str, dict[str, int]], ratio: float, add: _Add) -> None:
    totals = {c: sum(counts[c].values()) for c in ds.info.classes if c in counts}
    if len(totals) >= 2:
        big, small = max(totals, key=totals.__getitem__), min(totals, key=totals.__getitem__)
        if totals[big] > ratio * totals[small]:
            add("warning", "imbalance", f"class {big!r} has {totals[big]} images and {small!r} only {totals[small]} "
                f"(over {ratio:g}:1): collect more of {small!r} or expect it to be learned poorly")
    if any(s.split for s in ds.samples):
        for c, per_split in counts.items():
            absent = [sp for sp in SPLITS if per_split.get(sp, 0) == 0]
            if absent and sum(per_split.values()) >= 3:
                add("warning", "split-gap", f"class {c!r} has no images in split(s) {absent}")
