"""Known labels for a QA run (``--labels``): class subfolders, a dataset folder, or a CSV.

* a folder with ``manifest.csv`` (our dataset layout): its ``path`` and ``label`` columns;
* any other folder: the first subfolder names the class (``DIR/scratch/a.jpg`` is a scratch);
* a CSV file with a header holding ``path`` and ``label``; relative paths are taken from the
  CSV's own folder.

Files are matched by their resolved path, so the same images may be given to ``inspect`` by
any route (relative, absolute, through a glob).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inspection.errors import DefectscopeError

MANIFEST = "manifest.csv"  # the dataset layout's manifest (datasets/layout.py)


class LabelsError(DefectscopeError):
    """The --labels folder or CSV cannot be read."""


@dataclass(frozen=True)
class Truth:
    labels: Mapping[Path, str]  # resolved path -> label
    source: str

    def label_of(self, path: str | Path) -> str | None:
        return self.labels.get(Path(path).resolve())


def _from_csv(path: Path, base: Path) -> dict[Path, str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            if not {"path", "label"} <= cols:
                raise LabelsError(f"{path} needs a header with 'path' and 'label' columns (it has: "
                                  f"{', '.join(sorted(cols)) or 'none'})")
            rows = [(r["path"] or "", r["label"] or "") for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelsError(f"cannot read the labels file {path}: {exc}") from None
    out = {}
    for file, label in rows:
        if file.strip() and label.strip():
            p = Path(file.strip())
            out[(p if p.is_absolute() else base / p).resolve()] = label.strip()
    return out


def load_truth(spec: str | Path) -> Truth:
    spec = Path(spec)
    if spec.is_dir():
        if (spec / MANIFEST).is_file():
            labels = _from_csv(spec / MANIFEST, spec)
        else:
            from qa.paths import collect_paths

            labels = {}
            for sub in sorted(p for p in spec.iterdir() if p.is_dir() and not p.name.startswith(".")):
                labels.update({f.resolve(): sub.name for f in collect_paths([sub])})
    elif spec.is_file():
        labels = _from_csv(spec, spec.parent)
    else:
        raise LabelsError(f"--labels {spec} does not exist: give a folder of class subfolders or a CSV with path,label")
    if not labels:
        raise LabelsError(f"{spec} gives no labels: expected class subfolders with images, or CSV rows path,label")
    return Truth(labels, str(spec))
