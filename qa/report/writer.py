"""The report folder: a journal appended as results arrive (what --resume reads), the images
written as they arrive, and the final files written atomically at the end.

    REPORT_DIR/verdicts.jsonl, verdicts.csv, report.html   written once, at the end, atomically
    REPORT_DIR/thumbs/*.webp, heatmaps/*.webp              small images the page shows (qa/report/assets.py)
    REPORT_DIR/.journal.jsonl                              one row per file, once its images are written

A crash can tear only the journal's last line; resuming drops that line and inspects the
file again. The journal stays after the end, so a later --resume can add files to a report.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from inspection.atomic import write_bytes_atomic, write_text_atomic
from inspection.errors import DefectscopeError
from qa.batch import ItemResult
from qa.report.assets import Names, Pipeline, store
from qa.report.html import render_html
from qa.report.rows import ASSET_KEYS, row_from_result, to_csv, to_jsonl
from qa.report.summary import Summary, summarize
from qa.report.truth import Truth

JOURNAL = ".journal.jsonl"
FINAL = ("verdicts.jsonl", "verdicts.csv", "report.html")


class ReportError(DefectscopeError):
    """The report folder cannot be written or resumed."""


def _publish(path: Path, data: bytes) -> None:
    """Atomic write; a resumed report rewrites nothing that has not changed."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    write_bytes_atomic(path, data)


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


def _read_journal(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Rows, and whether a torn or unreadable line was dropped."""
    rows, torn = [], False
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                torn = True
                continue
            if isinstance(row, dict) and isinstance(row.get("path"), str) and "verdict" in row:
                rows.append(row)
    return rows, torn


class ReportWriter:
    def __init__(self, out: str | Path, *, model: str, classes: Sequence[str], pass_classes: Sequence[str],
                 resume: bool = False, title: str = "defectscope QA report") -> None:
        self.out = Path(out)
        self.model = model
        self.classes = tuple(classes)
        self.pass_classes = tuple(pass_classes)
        self.title = title
        self.rows: dict[str, dict[str, Any]] = {}  # resolved path -> row, in arrival order
        self.names = Names()
        journal = self.out / JOURNAL
        if self.out.exists() and not self.out.is_dir():
            raise ReportError(f"{self.out} is a file: --out needs a folder for the report")
        existing = journal.is_file() or any((self.out / f).exists() for f in FINAL)
        if existing and not resume:
            raise ReportError(f"{self.out} already holds a report: pass --resume to continue it, or choose a new --out")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            if resume and journal.is_file():
                rows, torn = _read_journal(journal)
                self._check_model(rows)
                self.rows = {_key(r["path"]): r for r in rows}
                for key, r in self.rows.items():
                    self.names.keep(key, r)
                legacy = self._adopt_inline_images()
                if torn or legacy:  # rewrite without the torn line so appends start on a clean line
                    write_text_atomic(journal, "".join(json.dumps(r) + "\n" for r in rows))
            self._fh: IO[str] = journal.open("a", encoding="utf-8")
            self._images = Pipeline(self.out, self._journal)
        except OSError as exc:
            raise ReportError(f"cannot write the report folder {self.out}: {exc.strerror or exc}") from None
        self._lock()
        self.resumed = len(self.rows)

    def _lock(self) -> None:
        """One writer per report: a second run on the same folder would interleave the journal."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run at a time is the user's to keep
            return
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise ReportError(f"another run is writing the report in {self.out}: wait for it to finish "
                              "(or stop it), then use --resume") from None

    def _adopt_inline_images(self) -> bool:
        """A journal from before the images became files holds them as base64: write them out."""
        found = False
        for key, r in self.rows.items():
            if any(k in r for k in ASSET_KEYS):
                found = True
                inline = {k: base64.b64decode(r.pop(k)) if r.get(k) else None for k in ASSET_KEYS}
                r.update(store(self.out, self.names.name(key, r["path"]), inline))
        return found

    def _check_model(self, rows: list[dict[str, Any]]) -> None:
        seen = {f"{r['model_name']}@{r['model_version']}" for r in rows if r.get("model_version")}
        other = seen - {self.model}
        if other:
            raise ReportError(
                f"{self.out} was made with model {', '.join(sorted(other))}, not {self.model}: one report holds "
                "one model's verdicts; choose a new --out to inspect with this model"
            )

    def todo(self, paths: Iterable[Path]) -> list[Path]:
        """The paths not yet in the report."""
        return [p for p in paths if _key(p) not in self.rows]

    def add(self, result: ItemResult) -> None:
        """Queue the row; it reaches the journal once its thumbnail and heatmap files are written."""
        key = _key(result.path)
        row = row_from_result(result)
        self.rows[key] = row
        try:
            self._images.add(row, self.names.name(key, result.path),
                             {"thumbnail": result.thumbnail, "heatmap": result.heatmap})
        except OSError as exc:
            raise ReportError(f"cannot write the report's images into {self.out}: {exc.strerror or exc}") from None

    def _journal(self, row: dict[str, Any]) -> None:
        try:
            self._fh.write(json.dumps(row) + "\n")
            self._fh.flush()
        except OSError as exc:
            raise ReportError(f"cannot append to {self.out / JOURNAL}: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Wait for the images in flight, journal their rows, close the journal."""
        if self._fh.closed:
            return
        try:
            self._images.close()
        except OSError as exc:
            raise ReportError(f"cannot write the report's images into {self.out}: {exc.strerror or exc}") from None
        finally:
            self._fh.close()

    def ordered(self, order: Sequence[Path] | None = None) -> list[dict[str, Any]]:
        """Rows in ``order`` (the walk of this run); rows of earlier runs not in it follow."""
        if order is None:
            return list(self.rows.values())
        keys = [_key(p) for p in order]
        picked = [self.rows[k] for k in dict.fromkeys(keys) if k in self.rows]
        rest = [r for k, r in self.rows.items() if k not in set(keys)]
        return picked + rest

    def finish(self, order: Sequence[Path] | None = None, truth: Truth | None = None) -> Summary:
        """Write verdicts.jsonl, verdicts.csv and report.html; return the summary."""
        self.close()
        rows = [dict(r) for r in self.ordered(order)]
        for r in rows:
            r.pop("truth", None)
            label = truth.label_of(r["path"]) if truth is not None else None
            if label is not None:
                r["truth"] = label
        try:
            summary = summarize(rows, self.pass_classes)
            _publish(self.out / "verdicts.jsonl", to_jsonl(rows).encode())
            _publish(self.out / "verdicts.csv", to_csv(rows, self.classes).encode())
            _publish(self.out / "report.html", render_html(rows, summary, title=self.title).encode())
        except OSError as exc:
            raise ReportError(f"cannot write the report into {self.out}: {exc.strerror or exc}") from None
        return summary
