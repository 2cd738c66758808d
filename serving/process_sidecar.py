"""Process parameters for an image folder: a CSV or JSON table beside the images, one row per image.

CSV: a header row; the column ``image`` (or ``file``, or else the first column) names the image,
by its path relative to the folder or its file name; every other column is a parameter. Cells
that read as numbers become numbers, empty cells are missing. JSON: a list of objects with an
``image`` key, or an object mapping image names to parameter objects. Each row is checked by the
rules the service applies (``serving.metadata.check_process``), so a bad table fails before the
first image is sent, with the row that broke them.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from inspection.errors import DefectscopeError
from inspection.types import Frame
from serving.metadata import MetadataError, check_object, check_process

log = logging.getLogger("defectscope.station")
KEYS = ("image", "file", "filename", "path")


class SidecarError(DefectscopeError):
    """A process table that cannot be read or breaks the rules for process parameters."""


def _cell(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if isinstance(data, dict):
            return [(str(k), v) for k, v in data.items()]
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            key = next((k for k in KEYS if data and k in data[0]), "image")
            for n, r in enumerate(data):
                if not isinstance(r.get(key), str):
                    raise SidecarError(f"{path}: object {n} has no {key!r} key naming its image file")
            return [(r[key], {k: v for k, v in r.items() if k != key}) for r in data]
        raise SidecarError(f"{path}: expected a list of objects or an object of image name -> parameters")
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header:
        raise SidecarError(f"{path} is empty: write a header row (image,temperature,...)")
    key = next((i for i, h in enumerate(header) if h.strip().lower() in KEYS), 0)
    names = [h.strip() for h in header]
    out = []
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(names):
            raise SidecarError(f"{path} line {n}: {len(row)} cells, the header has {len(names)}")
        out.append((row[key].strip(), {names[i]: _cell(c) for i, c in enumerate(row) if i != key}))
    return out


def read_process_table(path: Path) -> dict[str, dict[str, Any]]:
    """Image name -> its process parameters, checked."""
    try:
        rows = list(_rows(Path(path)))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise SidecarError(f"cannot read the process table {path}: {exc}") from None
    table: dict[str, dict[str, Any]] = {}
    for name, params in rows:
        try:
            table[name] = check_process(check_object(params, f"process of {name!r}"), f"process of {name!r}")
        except MetadataError as exc:
            raise SidecarError(f"{path}: {exc}") from None
    if not table:
        raise SidecarError(f"{path} lists no images")
    return table


def with_process(frames: Iterable[Frame], table: dict[str, dict[str, Any]], root: Path) -> Iterator[Frame]:
    """The frames of an image folder with their row of ``table`` in ``meta["process"]``."""
    missing = 0
    for frame in frames:
        path = Path(str(frame.meta.get("path", frame.source)))
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        params = table.get(rel, table.get(path.name))
        if params is None:
            missing += 1
            if missing == 1:
                log.warning("%s has no row in the process table: sent without process parameters", rel)
            yield frame
        else:
            yield replace(frame, meta={**frame.meta, "process": params})
    if missing:
        log.warning("%d images had no row in the process table", missing)
