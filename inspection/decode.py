"""Bytes -> uint8 image with OpenCV, refusing bombs and truncated files first.

Every colour layout (gray, BGR, BGRA, 16-bit, CMYK JPEG) comes out as 8-bit gray or BGR,
whichever the model wants, because OpenCV's IMREAD_COLOR / IMREAD_GRAYSCALE flags do that
conversion in the decoder. Alpha is dropped (as OpenCV and PIL's convert("RGB") do), and
16-bit samples keep their top 8 bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from inspection.errors import ImageDecodeError, ImageTooLargeError
from inspection.imageinfo import ImageInfo, read_image_info
from inspection.limits import DEFAULT_MAX_PIXELS

__all__ = ["DEFAULT_MAX_PIXELS", "decode_image", "read_image_file", "reduction_factor"]

ColorMode = Literal["bgr", "gray"]

_FLAGS = {
    "bgr": {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8},
    "gray": {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
             4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8},
}

# libpng and libjpeg complain on stderr about the corrupt files we already report ourselves.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def reduction_factor(info: ImageInfo, min_size: tuple[int, int] | None) -> int:
    """Largest of 1, 2, 4, 8 that keeps the decoded image at least ``min_size`` (h, w).

    Only JPEG decodes faster at reduced size (libjpeg scales in the DCT); other formats
    would be decoded in full and then subsampled, which only loses quality.
    """
    if min_size is None or info.format != "jpeg":
        return 1
    factor = 1
    for f in (2, 4, 8):
        if info.height // f >= min_size[0] and info.width // f >= min_size[1]:
            factor = f
    return factor


def decode_image(
    data: bytes,
    *,
    color: ColorMode = "bgr",
    min_size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    info: ImageInfo | None = None,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode ``data``; returns the image (HxW or HxWx3 uint8) and its header info.

    ``min_size`` (h, w) allows decoding a JPEG at 1/2, 1/4 or 1/8 resolution as long as the
    result stays at least that large: the caller resizes to the model input anyway.
    ``info`` skips re-reading the header when the caller already has it.
    """
    info = info or read_image_info(data)
    if info.pixels > max_pixels:
        raise ImageTooLargeError(
            f"image declares {info.width}x{info.height} = {info.pixels:,} pixels, over the "
            f"limit of {max_pixels:,}: refused before decoding (possible decompression bomb)"
        )
    if info.budget_pixels > max_pixels:
        raise ImageTooLargeError(
            f"{info.format.upper()} declares a decoding buffer of {info.budget_pixels:,} pixels for a "
            f"{info.width}x{info.height} image, over the limit of {max_pixels:,}: refused (possible "
            "decompression bomb)"
        )
    if info.truncated:
        raise ImageDecodeError(f"{info.format.upper()} data is truncated: the file is incomplete")
    factor = reduction_factor(info, min_size)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buf, _FLAGS[color][factor])
    except cv2.error as exc:  # OpenCV raises on some malformed headers
        raise ImageDecodeError(f"{info.format.upper()} data could not be decoded: {exc.msg}") from None
    if image is None or image.size == 0:
        raise ImageDecodeError(f"{info.format.upper()} data is corrupt and could not be decoded")
    _check_decoded_size(image, info, factor)
    return image, info


def _check_decoded_size(image: np.ndarray, info: ImageInfo, factor: int) -> None:
    """The size that was checked must be the size that was decoded: a file whose data disagrees
    with its header is refused even when OpenCV's own limit let it through."""
    want = (-(-info.height // factor), -(-info.width // factor))  # libjpeg rounds reduced sizes up
    got = image.shape[:2]
    if got not in (want, want[::-1]):  # EXIF orientation may turn the frame by 90 degrees
        raise ImageDecodeError(
            f"{info.format.upper()} header declares {info.width}x{info.height} but the data decodes to "
            f"{got[1] * factor}x{got[0] * factor}: the file is corrupt or crafted"
        )


def read_image_file(path: str | Path, **kwargs) -> tuple[np.ndarray, ImageInfo]:
    """decode_image for a file; OSErrors become ImageDecodeError with the path."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_image(data, **kwargs)
