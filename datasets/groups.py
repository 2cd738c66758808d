"""Which images belong together and must share a split or fold: the views of one physical part, one
lot, one day, one camera; and always identical files.

``group_by`` names a manifest column (``part``, ``lot``, ...) or, as ``regex:PATTERN``, a regular
expression searched in each file's original name (its first group, or the whole match, is the
group). Identical files (same sha256) are merged into one group whatever their keys say, so a
duplicate can never leak from train into test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from datasets.layout import Dataset, DatasetError, Sample


def key_function(group_by: str | None, samples: Sequence[Sample]) -> Callable[[Sample], str]:
    """Sample -> group key; refuses a column some rows lack, or a pattern some names do not match."""
    if not group_by:
        return lambda s: s.sha256 or f"path:{s.path}"
    if group_by.startswith("regex:"):
        try:
            pattern = re.compile(group_by[len("regex:"):])
        except re.error as exc:
            raise DatasetError(f"--group-by {group_by!r} is not a valid regular expression: {exc}") from None

        def by_name(s: Sample) -> str:
            name = PurePosixPath((s.source or s.path).replace("\\", "/")).name
            m = pattern.search(name)
            if m is None:
                raise DatasetError(f"--group-by {group_by!r} does not match the file name {name!r}: every image "
                                   "needs a group")
            return "re:" + (m.group(1) if m.groups() else m.group(0))

        return by_name
    missing = [s.path for s in samples if not s.column(group_by)]
    if missing:
        raise DatasetError(f"{len(missing)} images have no {group_by!r} value (e.g. {missing[0]}): add the column "
                           "to the manifest, or group by another column or by regex:PATTERN on the file name")
    return lambda s: "col:" + s.column(group_by)


def group_samples(samples: Sequence[Sample], group_by: str | None) -> list[list[int]]:
    """Indices of ``samples`` in groups: same key or same bytes (union-find), each group in order."""
    key = key_function(group_by, samples)
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, s in enumerate(samples):
        for k in {key(s), s.sha256 or f"path:{s.path}"}:
            j = first.setdefault(k, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(samples)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def remembered_group_by(dataset: Dataset) -> str | None:
    """The grouping the dataset was split with (dataset.json ``group_by``), for later carving."""
    value = dataset.info.extra.get("group_by")
    return value if isinstance(value, str) and value else None
