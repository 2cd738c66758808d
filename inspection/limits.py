"""Decoder limits that must be in place before OpenCV is imported anywhere.

OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when ``cv2`` is first imported, and refuses to
allocate a larger image in every decoder. It is the backstop under our own header check
(``inspection.imageinfo``): a file whose header lies to both still cannot allocate gigabytes.
``inspection/__init__`` imports this module first, and every package of ours imports
``inspection`` before ``cv2``.
"""

from __future__ import annotations

import logging
import os
import sys

# 64 megapixels covers every area-scan camera on the market with room to spare; a PNG
# header can declare 30000x30000 in a few bytes and would take 2.7 GB to decode.
DEFAULT_MAX_PIXELS = 64_000_000
OPENCV_LIMIT_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"


def install_opencv_limit() -> None:
    if OPENCV_LIMIT_ENV not in os.environ:
        if "cv2" in sys.modules:  # too late for this process: say so instead of pretending
            logging.getLogger("defectscope").warning(
                "cv2 was imported before inspection, so OpenCV's own pixel limit (%s) is its default; import "
                "inspection first", OPENCV_LIMIT_ENV)
        os.environ[OPENCV_LIMIT_ENV] = str(DEFAULT_MAX_PIXELS)


def opencv_limit() -> int:
    """The limit OpenCV enforces in this process (what the environment said at its import)."""
    try:
        return int(os.environ.get(OPENCV_LIMIT_ENV, str(1 << 30)))
    except ValueError:
        return 1 << 30


install_opencv_limit()
