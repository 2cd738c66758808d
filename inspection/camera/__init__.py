"""Frame sources: one protocol (iterate -> ``Frame``; ``close()``; a context manager) for all.

``open_source(spec)`` picks the source from a string, as the command line gives it:

- ``0``, ``1``, ...: an OpenCV camera by device index
- ``rtsp://...``, ``http(s)://...``: a network stream
- a video file path: played once, frame by frame
- an image folder path: its images, recursively, in sorted order
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from inspection.camera.base import BaseSource, CameraError, FrameSource, SourceStats
from inspection.camera.folder import IMAGE_EXTENSIONS, FolderSource, list_images
from inspection.camera.opencv_capture import STREAM_SCHEMES, OpenCVSource
from inspection.camera.pacing import Pacer, RateError, parse_rate

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

SPEC_HELP = ("a source is a camera index (0, 1, ...), an rtsp:// or http(s):// URL, a video file or an image "
             "folder (or, for a simulated line, 'sim' or 'sim:RECIPE')")


def open_source(spec: str, *, rate: float | None = None, **options: Any) -> FrameSource:
    """Open the frame source ``spec`` names; ``rate`` paces it (frames per second, None = as fast as possible).

    Other ``options`` go to the source's constructor.
    """
    spec = str(spec).strip()
    if spec.isdigit():
        return OpenCVSource(int(spec), rate=rate, **options)
    m = _SCHEME.match(spec)
    if m:
        if m.group(1).lower() not in STREAM_SCHEMES:
            raise CameraError(f"unsupported stream scheme {m.group(1)!r}: {SPEC_HELP}")
        return OpenCVSource(spec, rate=rate, **options)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, rate=rate, **options)
    if path.is_file():
        return OpenCVSource(path, rate=rate, **options)
    raise CameraError(f"{spec!r}: no such file or folder; {SPEC_HELP}")


__all__ = [
    "IMAGE_EXTENSIONS",
    "BaseSource",
    "CameraError",
    "FolderSource",
    "FrameSource",
    "OpenCVSource",
    "Pacer",
    "RateError",
    "SourceStats",
    "list_images",
    "open_source",
    "parse_rate",
]
