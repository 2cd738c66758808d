"""Read an image's format and declared size from its header, without decoding it.

This is what lets us refuse decompression bombs before a single pixel is allocated, spot
truncated files that OpenCV would silently half-decode, and pick a reduced JPEG decode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from inspection.errors import ImageDecodeError

SUPPORTED = "JPEG, PNG, BMP, TIFF, WebP or GIF"

# JPEG start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg", "png", "bmp", "tiff", "webp", "gif"
    width: int
    height: int
    truncated: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _need(data: bytes, n: int, fmt: str) -> None:
    if len(data) < n:
        raise ImageDecodeError(f"{fmt} header is truncated ({len(data)} bytes): the file is incomplete")


def _jpeg(data: bytes) -> ImageInfo:
    i, n = 2, len(data)
    size: tuple[int, int] | None = None
    while i < n:
        if data[i] != 0xFF:
            raise ImageDecodeError("JPEG structure is corrupt (marker expected): re-save or re-capture the image")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # standalone markers have no length
        if marker == 0xD9:
            break
        if i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if marker in _SOF_MARKERS and i + 7 <= n:
            h, w = struct.unpack(">HH", data[i + 3 : i + 7])
            size = (w, h)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                break
            # Inside entropy data 0xFF is always stuffed or a restart marker, so the first FFD9
            # after the scan starts is the real end of image; EXIF thumbnails end before it.
            truncated = data.find(b"\xff\xd9", i) == -1
            return ImageInfo("jpeg", size[0], size[1], truncated)
        i += length
    if size is None:
        raise ImageDecodeError("JPEG has no frame header: the file is truncated or corrupt")
    return ImageInfo("jpeg", size[0], size[1], truncated=True)


def _png(data: bytes) -> ImageInfo:
    _need(data, 24, "PNG")
    if data[12:16] != b"IHDR":
        raise ImageDecodeError("PNG has no IHDR header: the file is corrupt")
    w, h = struct.unpack(">II", data[16:24])
    return ImageInfo("png", w, h, truncated=b"IEND" not in data[-64:])


def _bmp(data: bytes) -> ImageInfo:
    _need(data, 26, "BMP")
    w, h = struct.unpack("<ii", data[18:26])
    return ImageInfo("bmp", abs(w), abs(h))


def _tiff(data: bytes) -> ImageInfo:
    _need(data, 8, "TIFF")
    e = "<" if data[:2] == b"II" else ">"
    (magic,) = struct.unpack(e + "H", data[2:4])
    if magic != 42:
        raise ImageDecodeError("BigTIFF files are not supported: save the image as a classic TIFF or PNG")
    (off,) = struct.unpack(e + "I", data[4:8])
    _need(data, off + 2, "TIFF")
    (count,) = struct.unpack(e + "H", data[off : off + 2])
    dims: dict[int, int] = {}
    for k in range(count):
        p = off + 2 + 12 * k
        _need(data, p + 12, "TIFF")
        tag, typ = struct.unpack(e + "HH", data[p : p + 4])
        if tag in (256, 257):
            fmt = e + ("H" if typ == 3 else "I")
            dims[tag] = struct.unpack(fmt, data[p + 8 : p + 8 + struct.calcsize(fmt)])[0]
    if 256 not in dims or 257 not in dims:
        raise ImageDecodeError("TIFF has no image size tags: the file is corrupt")
    return ImageInfo("tiff", dims[256], dims[257])


def _webp(data: bytes) -> ImageInfo:
    _need(data, 30, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return ImageInfo("webp", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        (b,) = struct.unpack("<I", data[21:25])
        return ImageInfo("webp", 1 + (b & 0x3FFF), 1 + ((b >> 14) & 0x3FFF))
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("webp", w, h)
    raise ImageDecodeError("WebP file has an unknown chunk layout: the file is corrupt")


def _gif(data: bytes) -> ImageInfo:
    _need(data, 10, "GIF")
    w, h = struct.unpack("<HH", data[6:10])
    return ImageInfo("gif", w, h, truncated=not data.rstrip(b"\x00").endswith(b";"))


def read_image_info(data: bytes) -> ImageInfo:
    """Format and size from the header. Raises ImageDecodeError for anything else."""
    if not data:
        raise ImageDecodeError("empty file: no image data was received")
    if data[:3] == b"\xff\xd8\xff":
        info = _jpeg(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        info = _png(data)
    elif data[:2] == b"BM":
        info = _bmp(data)
    elif data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        info = _tiff(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        info = _webp(data)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        info = _gif(data)
    else:
        raise ImageDecodeError(f"not an image: expected {SUPPORTED} data")
    if info.width <= 0 or info.height <= 0:
        raise ImageDecodeError(f"{info.format.upper()} declares an empty image ({info.width}x{info.height})")
    return info
