"""Image files that lie, crafted byte by byte: headers whose size disagrees with what a decoder
would allocate, bombs, and multi-frame files. Shared by the decoder tests and the service's
hostile-input corpus."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np

from tests.support import encode, png_bomb

BIG = (32768, 32256)  # 1 gigapixel: 3 GB as BGR


def _tiff(entries: list[tuple[int, int, int, bytes]], tail: bytes = b"", *, order: str = "<") -> bytes:
    """A classic one-page TIFF: (tag, type, count, 4 value bytes) entries as given (not sorted)."""
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    ifd = struct.pack(order + "H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack(order + "HHI", tag, typ, count) + value
    return head + ifd + struct.pack(order + "I", 0) + tail


def _short(v: int) -> bytes:
    return struct.pack("<HH", v, 0)


def _long(v: int) -> bytes:
    return struct.pack("<I", v)


def _strip_tags(width: int, height: int, data_at: int, n: int) -> list[tuple[int, int, int, bytes]]:
    return [(258, 3, 1, _short(8)), (259, 3, 1, _short(8)), (262, 3, 1, _short(1)), (273, 4, 1, _long(data_at)),
            (277, 3, 1, _short(1)), (278, 4, 1, _long(height)), (279, 4, 1, _long(n))]


def tiff_repeated_size_tags() -> bytes:
    """libtiff keeps the first copy of a tag: 32768x32256 first, then an innocent 1x1."""
    pixels = zlib.compress(b"\0" * 4096)
    entries = [(256, 3, 1, _short(BIG[0])), (257, 3, 1, _short(BIG[1])), (256, 3, 1, _short(1)),
               (257, 3, 1, _short(1))]
    entries += _strip_tags(BIG[0], BIG[1], 8 + 2 + 12 * 11 + 4, len(pixels))
    return _tiff(entries, pixels)


def tiff_long8_size() -> bytes:
    """Width as an 8-byte LONG8 (type 16): the value sits at an offset, not in the entry."""
    value_at = 8 + 2 + 12 * 9 + 4
    entries = [(256, 16, 1, _long(value_at)), (257, 3, 1, _short(BIG[1]))]
    entries += _strip_tags(BIG[0], BIG[1], value_at + 8, 16)
    return _tiff(entries, struct.pack("<Q", BIG[0]) + zlib.compress(b"\0" * 16))


def bigtiff(width: int = BIG[0], height: int = BIG[1]) -> bytes:
    """A BigTIFF (magic 43, 8-byte offsets, 20-byte entries) declaring a large image."""
    head = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (262, 3, 1, 1), (277, 3, 1, 1)]
    ifd = struct.pack("<Q", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHQ", tag, typ, count) + struct.pack("<Q", value)
    return head + ifd + struct.pack("<Q", 0)


def tiff_huge_tile() -> bytes:
    """A 16x16 image that declares 65520x65520 tiles (a 4 GB tile buffer)."""
    data = zlib.compress(b"\x80" * 256)
    entries = [(256, 3, 1, _short(16)), (257, 3, 1, _short(16)), (258, 3, 1, _short(8)), (259, 3, 1, _short(8)),
               (262, 3, 1, _short(1)), (277, 3, 1, _short(1)), (322, 4, 1, _long(65520)), (323, 4, 1, _long(65520)),
               (324, 4, 1, _long(8 + 2 + 12 * 10 + 4)), (325, 4, 1, _long(len(data)))]
    return _tiff(entries, data)


def gif_screen(width: int, height: int) -> bytes:
    """A GIF whose logical screen (what OpenCV allocates) is ``width`` x ``height``, with one 1x1 frame."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame + b";"


def jpeg_two_frame_headers(rng: np.random.Generator) -> bytes:
    """A real 16x16 JPEG with a second frame header declaring a gigapixel inserted before it."""
    data = encode(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), ".jpg")
    sof = data.find(b"\xff\xc0")
    fake = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", BIG[1], BIG[0]) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return data[:sof] + fake + data[sof:]


def bmp_core_header(width: int, height: int, pixel_bytes: int | None = None) -> bytes:
    """An OS/2 BMP (12-byte header, 16-bit sizes) of 24-bit pixels (``pixel_bytes`` of them: a bomb
    needs only its header)."""
    n = (width * 3 + 3) // 4 * 4 * height if pixel_bytes is None else pixel_bytes
    head = b"BM" + struct.pack("<IHHI", (26 + n) & 0xFFFFFFFF, 0, 0, 26) + \
        struct.pack("<IHHHH", 12, width, height, 1, 24)
    return head + b"\x80" * n


def webp_canvas(width: int, height: int, rng: np.random.Generator) -> bytes:
    """A real 16x16 WebP wrapped in a VP8X header that declares another canvas."""
    vp8 = encode(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), ".webp")[12:]  # the VP8/VP8L chunk
    ext = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + \
        (height - 1).to_bytes(3, "little")
    body = b"WEBP" + ext + vp8
    return b"RIFF" + struct.pack("<I", len(body)) + body


def lying_files(rng: np.random.Generator) -> dict[str, bytes]:
    """Every lie above, by name; none of them may cost a decoder more than the pixel limit."""
    return {
        "tiff repeated size tags": tiff_repeated_size_tags(),
        "tiff LONG8 width": tiff_long8_size(),
        "bigtiff gigapixel": bigtiff(),
        "tiff huge tile": tiff_huge_tile(),
        "gif huge screen": gif_screen(30000, 30000),
        "jpeg two frame headers": jpeg_two_frame_headers(rng),
        "png bomb": png_bomb(),
        "bmp core header bomb": bmp_core_header(60000, 60000, 4096),
        "webp canvas bomb": webp_canvas(16000, 16000, rng),
    }


def multi_frame_files() -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Animated and multi-page files of three 20x30 frames: (bytes, (h, w))."""
    frames = [np.full((20, 30, 3), v, np.uint8) for v in (40, 120, 200)]
    anim = cv2.Animation()
    anim.frames, anim.durations = frames, [100] * 3
    out = {}
    for ext in (".gif", ".webp", ".png"):
        ok, buf = cv2.imencodeanimation(ext, anim)
        assert ok
        out[f"animated {ext[1:]}"] = (buf.tobytes(), (20, 30))
    ok, buf = cv2.imencodemulti(".tiff", frames)
    assert ok
    out["multi-page tiff"] = (buf.tobytes(), (20, 30))
    return out


def cmyk_jpeg() -> bytes:
    from PIL import Image  # a matplotlib dependency; OpenCV cannot write CMYK

    buf = io.BytesIO()
    Image.new("CMYK", (31, 17), (10, 200, 30, 0)).save(buf, "JPEG")
    return buf.getvalue()
