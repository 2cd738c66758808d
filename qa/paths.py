"""Which files a QA run inspects: files, folders (recursive, image suffixes only, hidden entries
skipped) and glob patterns, in a stable order."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from inspection.errors import DefectscopeError
from inspection.imageinfo import IMAGE_SUFFIXES


class InputPathError(DefectscopeError):
    """A path or pattern given to the batch tool names nothing."""


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .cache, .git, report temp folders
        found.extend(Path(root, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found, key=lambda p: p.parts)


def collect_paths(specs: Iterable[str | Path]) -> list[Path]:
    """Files, folders and glob patterns, in the order given, each folder or pattern sorted; a file
    named twice is listed once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for spec in specs:
        s = str(spec)
        p = Path(s)
        if p.is_dir():
            paths = _walk(p)
        elif p.exists() or p.is_symlink():
            paths = [p]  # named explicitly: inspected whatever its suffix, so a bad file becomes an error row
        elif glob.has_magic(s):
            hits = sorted(glob.glob(s, recursive=True))
            paths = [Path(h) for h in hits if Path(h).is_file()]
            if not paths:
                raise InputPathError(f"the pattern {s!r} matches no file")
        else:
            raise InputPathError(f"{s} does not exist: give image files, folders or glob patterns")
        for path in paths:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out
