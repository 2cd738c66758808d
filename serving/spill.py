"""Append-only JSON-lines files for records that could not go where they belong yet.

The verdict log spills rows here while its database refuses writes (disk full, locked by
another process) and replays them later; rows the database will never take go to a
dead-letter file of the same kind. Each append is flushed and fsynced before it returns, so a
record is either in the file whole or not at all (a torn last line from a crash is skipped on
reading).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("defectscope.serving")


class JsonLines:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Write ``records`` durably; raises OSError when the disk refuses (nothing half-counted)."""
        lines = "".join(json.dumps(r, default=repr, separators=(",", ":")) + "\n" for r in records)
        if not lines:
            return 0
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                data = lines.encode("utf-8")
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, start)  # a partial append must not leave a torn record behind
                    raise
            finally:
                os.close(fd)
        return lines.count("\n")

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def read(self) -> list[dict[str, Any]]:
        """Every whole record; a torn or garbled line is reported and skipped."""
        out = []
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                return []
        for n, line in enumerate(text.splitlines(), start=1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                log.error("%s line %d is not a whole record; skipped", self.path, n)
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def remove(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)

    def take(self) -> JsonLines | None:
        """Move the records aside for replaying (a leftover from an interrupted replay first), so
        appends during the replay go to a fresh file; None when there is nothing to replay."""
        taken = self.path.with_name(self.path.name + ".replaying")
        with self._lock:
            if not taken.exists():
                if not self.exists():
                    return None
                os.replace(self.path, taken)
        return JsonLines(taken)
