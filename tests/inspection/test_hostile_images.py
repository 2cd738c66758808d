"""Files that lie about their size are refused before a decoder allocates for them, in every format."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from inspection.decode import decode_image
from inspection.errors import ImageDecodeError, ImageTooLargeError
from inspection.imageinfo import ImageInfo, read_image_info
from inspection.limits import DEFAULT_MAX_PIXELS
from tests.hostile_images import bmp_core_header, cmyk_jpeg, gif_screen, lying_files, multi_frame_files, webp_canvas
from tests.support import encode

LIES = lying_files(np.random.default_rng(0))


@pytest.mark.parametrize("name", sorted(LIES))
def test_a_lying_header_is_refused_before_decoding(name: str) -> None:
    with pytest.raises(ImageDecodeError) as err:
        decode_image(LIES[name])
    if name != "jpeg two frame headers":
        assert isinstance(err.value, ImageTooLargeError), err.value
        assert "refused" in str(err.value)


def test_refusing_every_lie_allocates_nothing_big() -> None:
    """In a fresh process (so peak memory is its own): the whole set costs no image buffer."""
    script = (
        "import resource, numpy as np\n"
        "import inspection\n"
        "from inspection.decode import decode_image\n"
        "from tests.hostile_images import lying_files\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for data in lying_files(np.random.default_rng(0)).values():\n"
        "    try: decode_image(data)\n"
        "    except Exception: pass\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert float(out.stdout.split()[-1]) < 50, out.stdout  # MiB; one lie decoded would be gigabytes


def test_the_header_reader_follows_the_decoders_rules() -> None:
    assert read_image_info(bmp_core_header(17, 11)).pixels == 17 * 11  # OS/2 BMP: 16-bit sizes
    assert decode_image(bmp_core_header(17, 11))[0].shape == (11, 17, 3)
    assert (read_image_info(gif_screen(40, 30)).width, read_image_info(gif_screen(40, 30)).height) == (40, 30)
    rng = np.random.default_rng(1)
    assert decode_image(webp_canvas(16, 16, rng))[0].shape == (16, 16, 3)


@pytest.mark.parametrize("name", sorted(multi_frame_files()))
def test_multi_frame_files_inspect_their_first_frame(name: str) -> None:
    data, hw = multi_frame_files()[name]
    image, info = decode_image(data)
    assert image.shape[:2] == hw and (info.height, info.width) == hw
    assert abs(float(image.mean()) - 40) < 12  # the first frame (40), not the second (120) or third (200)


def test_cmyk_jpeg_is_decoded_to_bgr() -> None:
    image, info = decode_image(cmyk_jpeg())
    assert image.shape == (17, 31, 3) and info.format == "jpeg"


def test_data_that_decodes_to_another_size_than_its_header_is_refused(odd_bgr) -> None:
    data = encode(odd_bgr, ".png")
    with pytest.raises(ImageDecodeError, match="declares 5x5 but the data decodes to 17x11"):
        decode_image(data, info=ImageInfo("png", 5, 5))


def test_opencv_own_limit_is_set_before_cv2_loads() -> None:
    """The backstop: with our header check bypassed, OpenCV itself refuses a bomb in a process that
    imported inspection first (every entry point does)."""
    script = (
        "import os, json, numpy as np\n"
        "import inspection\n"
        "import cv2\n"
        "from tests.hostile_images import gif_screen\n"
        "try:\n"
        "    cv2.imdecode(np.frombuffer(gif_screen(9000, 9000), np.uint8), cv2.IMREAD_COLOR); refused = False\n"
        "except cv2.error: refused = True\n"
        "print(json.dumps([os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'], refused]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    limit, refused = json.loads(out.stdout.splitlines()[-1])
    assert int(limit) == DEFAULT_MAX_PIXELS and refused


def test_truncated_header_fields_are_a_clear_error() -> None:
    for data in (b"II*\x00\x08\x00\x00\x00\x05\x00", b"II+\x00\x08\x00\x00\x00", b"BM" + b"\0" * 30):
        with pytest.raises(ImageDecodeError):
            decode_image(data)
