"""Images out of uploaded zips, in memory, bounded per request; no name from an archive reaches the filesystem.

Member names are only labels for the answer. A zip's headers can lie (a zip bomb), and one
request can carry several zips, so one ``ZipBudget`` per request caps the entries looked at and
the bytes unpacked over all of them; each member is read through a cap one byte past what is
left. The entry count is read from the archive's end record before ``zipfile`` builds an object
per entry. Unpacking is CPU work: callers run it off the event loop. Every member that cannot
be used (not an image, over a limit, encrypted, damaged, an unknown compression) becomes an
error row; so does an upload that is no zip at all.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from inspection.imageinfo import IMAGE_SUFFIXES


@dataclass
class ZipBudget:
    """What one request may unpack, over all its zips."""

    max_images: int
    max_entries: int
    max_file_bytes: int
    max_total_bytes: int
    entries: int = 0
    images: int = 0
    total: int = 0


@dataclass
class Unzipped:
    images: list[tuple[str, bytes]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (member name, why it was skipped)


def is_zip(filename: str | None, content_type: str | None, data: bytes) -> bool:
    named = (filename or "").lower().endswith(".zip")
    named = named or content_type in ("application/zip", "application/x-zip-compressed")
    return named or data[:4] == b"PK\x03\x04"


def declared_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record (zip64 too); None when there is none."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    (count,) = struct.unpack("<H", data[at + 10 : at + 12])
    if count == 0xFFFF and at >= 20 and data[at - 20 : at - 16] == b"PK\x06\x07":  # zip64 locator
        (eocd64,) = struct.unpack("<Q", data[at - 12 : at - 4])
        if data[eocd64 : eocd64 + 4] == b"PK\x06\x06" and eocd64 + 40 <= len(data):
            (count,) = struct.unpack("<Q", data[eocd64 + 32 : eocd64 + 40])
    return count


def images_from_zip(data: bytes, budget: ZipBudget) -> Unzipped:
    """Image members of one zip, within what is left of ``budget``."""
    out = Unzipped()
    left = budget.max_entries - budget.entries
    count = declared_entries(data)
    if count is None:
        out.errors.append(("", "not a readable zip archive"))
        return out
    if count > left:
        out.errors.append(("", f"the archive lists {count:,} entries; at most {budget.max_entries:,} are read per "
                               "upload: split it"))
        budget.entries = budget.max_entries
        return out
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:  # zipfile raises many kinds for damaged archives (BadZipFile, ValueError, ...)
        out.errors.append(("", f"not a readable zip archive ({exc.__class__.__name__})"))
        return out
    with zf:
        for info in infos[:left]:
            budget.entries += 1
            _member(zf, info, budget, out)
        if len(infos) > left:
            budget.entries = budget.max_entries
            out.errors.append(("", f"{len(infos) - left:,} more entries not read: at most {budget.max_entries:,} "
                                   "per upload"))
    return out


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ZipBudget, out: Unzipped) -> None:
    name = info.filename
    base = PurePosixPath(name.replace("\\", "/")).name
    if info.is_dir() or not base or base.startswith(".") or name.startswith("__MACOSX/"):
        return
    if PurePosixPath(base).suffix.lower() not in IMAGE_SUFFIXES:
        out.errors.append((name, "not an image file (by its suffix)"))
        return
    if budget.images >= budget.max_images:
        out.errors.append((name, f"skipped: one upload may hold at most {budget.max_images} images"))
        return
    room = min(budget.max_file_bytes, budget.max_total_bytes - budget.total)
    if info.file_size > room:
        out.errors.append((name, f"skipped: over the size limit ({budget.max_file_bytes:,} bytes an image, "
                                 f"{budget.max_total_bytes:,} unpacked in all per upload)"))
        return
    try:
        with zf.open(info) as member:
            body = member.read(room + 1)
    except Exception as exc:  # encrypted, damaged, or a compression this Python cannot read (lzma, bz2 errors)
        out.errors.append((name, f"cannot read it from the zip ({exc.__class__.__name__}: encrypted, damaged "
                                 "or an unsupported compression)"))
        return
    if len(body) > room:
        out.errors.append((name, "skipped: it unpacks larger than its header says (a zip bomb?)"))
        budget.total += room  # what was unpacked to find out counts against the budget
        return
    budget.total += len(body)
    budget.images += 1
    out.images.append((name, body))
