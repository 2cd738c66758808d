"""Read an image's format and size from its header the way its decoder will, without decoding it.

This is what lets us refuse decompression bombs before a single pixel is allocated, spot
truncated files that OpenCV would silently half-decode, and pick a reduced JPEG decode. A
size check is only worth something if it reads the size the decoder will use, so each reader
follows its library's rules, not the specification's ideal: libjpeg takes the first frame
header, libtiff the first copy of a repeated tag (of any integer type, BigTIFF included) and
only the first page, OpenCV's GIF decoder the logical screen. ``work_pixels`` adds the buffers
a decoder sizes from other header fields (a TIFF tile or strip), which a bomb can inflate too.
``decode_image`` checks the decoded size against this one afterwards, and OpenCV's own limit
(``OPENCV_IO_MAX_IMAGE_PIXELS``, set in ``inspection/__init__``) is the backstop under both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from inspection.errors import ImageDecodeError

SUPPORTED = "JPEG, PNG, BMP, TIFF, WebP or GIF"
# The one list of file suffixes taken for images (folders, zips, sample intake, QA runs): the
# formats this module reads. A file named otherwise is still inspected when named explicitly.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif"})

# JPEG start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg", "png", "bmp", "tiff", "webp", "gif"
    width: int
    height: int
    truncated: bool = False
    work_pixels: int = 0  # largest buffer besides the image the decoder sizes from the header (TIFF tiles)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def budget_pixels(self) -> int:
        """What the pixel limit is checked against: the image or a larger working buffer."""
        return max(self.pixels, self.work_pixels)


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
        if length < 2:
            raise ImageDecodeError("JPEG segment has an invalid length: the file is corrupt")
        if marker in _SOF_MARKERS and i + 7 <= n:
            if size is not None:  # libjpeg refuses a second frame header; so do we, before it allocates
                raise ImageDecodeError("JPEG has two frame headers: the file is corrupt")
            h, w = struct.unpack(">HH", data[i + 3 : i + 7])
            size = (w, h)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                break
            # Inside entropy data 0xFF is always stuffed or a restart marker, so the first FFD9
            # after the scan starts is the real end of image; EXIF thumbnails end before it. Whether
            # there is one is searched from the end, where it is: a forward search of a whole frame's
            # entropy data held the GIL for a tenth of a decode.
            truncated = data.rfind(b"\xff\xd9", i) == -1
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
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", data[18:22])
    else:
        w, h = struct.unpack("<ii", data[18:26])
    return ImageInfo("bmp", abs(w), abs(h))


# TIFF field types that hold one integer (libtiff's TIFFReadDirEntryLong accepts each of them)
_TIFF_INTS = {1: "B", 6: "b", 3: "H", 8: "h", 4: "I", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
_TIFF_SIZE_TAGS = {256: "width", 257: "height", 322: "tile_width", 323: "tile_length"}


def _tiff(data: bytes) -> ImageInfo:
    _need(data, 16, "TIFF")
    e = "<" if data[:2] == b"II" else ">"
    (magic,) = struct.unpack(e + "H", data[2:4])
    big = magic == 43
    if big:  # BigTIFF: 8-byte offsets and counts, 20-byte entries
        (off,) = struct.unpack(e + "Q", data[8:16])
        count_fmt, entry, inline = "Q", 20, 8
    else:
        (off,) = struct.unpack(e + "I", data[4:8])
        count_fmt, entry, inline = "H", 12, 4
    head = struct.calcsize(e + count_fmt)
    _need(data, off + head, "TIFF")
    (count,) = struct.unpack(e + count_fmt, data[off : off + head])
    fields: dict[str, int] = {}
    for k in range(min(count, 4096)):  # only the first directory: OpenCV decodes the first page
        p = off + head + entry * k
        _need(data, p + entry, "TIFF")
        tag, typ = struct.unpack(e + "HH", data[p : p + 4])
        name = _TIFF_SIZE_TAGS.get(tag)
        if name is None or name in fields:  # libtiff ignores every later copy of a tag
            continue
        (n,) = struct.unpack(e + ("Q" if big else "I"), data[p + 4 : p + 4 + (8 if big else 4)])
        fmt = _TIFF_INTS.get(typ)
        if fmt is None or n != 1:
            raise ImageDecodeError(f"TIFF tag {tag} has an unusable type or count: the file is corrupt")
        value_at = p + 4 + (8 if big else 4)
        size = struct.calcsize(fmt)
        if size > inline:  # an 8-byte value in a classic TIFF lies at an offset
            (value_at,) = struct.unpack(e + "I", data[value_at : value_at + 4])
            _need(data, value_at + size, "TIFF")
        (value,) = struct.unpack(e + fmt, data[value_at : value_at + size])
        if value < 0:
            raise ImageDecodeError(f"TIFF tag {tag} is negative: the file is corrupt")
        fields[name] = value
    if "width" not in fields or "height" not in fields:
        raise ImageDecodeError("TIFF has no image size tags: the file is corrupt")
    w, h = fields["width"], fields["height"]
    # the decoder reads a tile at a time into a buffer sized by these tags (a strip of rows never
    # exceeds the image), and a 16x16 image may declare a 4096x4096 tile
    return ImageInfo("tiff", w, h, work_pixels=fields.get("tile_width", 0) * fields.get("tile_length", 0))


def _webp(data: bytes) -> ImageInfo:
    _need(data, 30, "WebP")
    chunk = data[12:16]
    (riff_size,) = struct.unpack("<I", data[4:8])
    truncated = len(data) < riff_size + 8
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return ImageInfo("webp", w & 0x3FFF, h & 0x3FFF, truncated)
    if chunk == b"VP8L":
        (b,) = struct.unpack("<I", data[21:25])
        return ImageInfo("webp", 1 + (b & 0x3FFF), 1 + ((b >> 14) & 0x3FFF), truncated)
    if chunk == b"VP8X":  # the canvas: libwebp refuses a still image of another size; animations fill it
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("webp", w, h, truncated)
    raise ImageDecodeError("WebP file has an unknown chunk layout: the file is corrupt")


def _gif(data: bytes) -> ImageInfo:
    # OpenCV's decoder paints every frame on the logical screen and refuses frames outside it
    _need(data, 10, "GIF")
    w, h = struct.unpack("<HH", data[6:10])
    return ImageInfo("gif", w, h, truncated=not data.rstrip(b"\x00").endswith(b";"))


def read_image_info(data: bytes) -> ImageInfo:
    """Format and size from the header. Raises ImageDecodeError for anything else."""
    if not data:
        raise ImageDecodeError("empty file: no image data was received")
    try:
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
    except struct.error:  # a field that runs past the end of the data
        raise ImageDecodeError("image header is truncated: the file is incomplete") from None
    if info.width <= 0 or info.height <= 0:
        raise ImageDecodeError(f"{info.format.upper()} declares an empty image ({info.width}x{info.height})")
    return info
