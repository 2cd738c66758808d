"""Images out of an uploaded zip, in memory, bounded; no name from the archive reaches the filesystem.

Member names are only labels for the answer. Sizes in a zip's headers can lie (a zip bomb), so
each member is read through a cap one byte past its limit, and the running total is capped too.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from serving.errors import ApiError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"})


@dataclass
class Unzipped:
    images: list[tuple[str, bytes]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (member name, why it was skipped)


def is_zip(filename: str | None, content_type: str | None, data: bytes) -> bool:
    named = (filename or "").lower().endswith(".zip")
    named = named or content_type in ("application/zip", "application/x-zip-compressed")
    return named or data[:4] == b"PK\x03\x04"


def images_from_zip(data: bytes, *, max_files: int, max_file_bytes: int, max_total_bytes: int) -> Unzipped:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ApiError(422, "invalid_zip", "the upload is not a readable zip archive") from None
    out, total = Unzipped(), 0
    with zf:
        for info in zf.infolist():
            name = info.filename
            base = PurePosixPath(name.replace("\\", "/")).name
            if info.is_dir() or not base or base.startswith(".") or name.startswith("__MACOSX/"):
                continue
            if PurePosixPath(base).suffix.lower() not in IMAGE_SUFFIXES:
                out.errors.append((name, "not an image file (by its suffix)"))
                continue
            if len(out.images) >= max_files:
                out.errors.append((name, f"skipped: a zip may hold at most {max_files} images"))
                continue
            if info.file_size > max_file_bytes or total + info.file_size > max_total_bytes:
                out.errors.append((name, f"skipped: over the size limit ({max_file_bytes:,} bytes an image, "
                                         f"{max_total_bytes:,} in all)"))
                continue
            try:
                with zf.open(info) as member:
                    body = member.read(max_file_bytes + 1)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, OSError) as exc:
                out.errors.append((name, f"cannot read it from the zip ({exc.__class__.__name__}: encrypted "
                                         "or damaged)"))
                continue
            if len(body) > max_file_bytes or total + len(body) > max_total_bytes:
                out.errors.append((name, "skipped: it unpacks larger than its header says (a zip bomb?)"))
                continue
            total += len(body)
            out.images.append((name, body))
    return out
