
import cv2
import numpy as np
import pytest

from inspection.decode import decode_image, reduction_factor
from inspection.errors import ImageDecodeError, ImageTooLargeError
from inspection.imageinfo import read_image_info
from tests.support import encode, png_bomb


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff", ".webp"])
def test_header_sizes_match_for_every_format(odd_bgr, ext):
    info = read_image_info(encode(odd_bgr, ext))
    assert (info.width, info.height) == (17, 11)
    assert not info.truncated


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff", ".webp"])
def test_decode_gives_bgr_uint8_of_the_right_shape(odd_bgr, ext):
    image, _ = decode_image(encode(odd_bgr, ext))
    assert image.shape == (11, 17, 3) and image.dtype == np.uint8
    if ext in (".png", ".bmp", ".tiff"):  # lossless formats round-trip exactly
        assert np.array_equal(image, odd_bgr)


def test_gray_16bit_and_alpha_inputs_become_8bit_bgr(odd_bgr):
    gray = cv2.cvtColor(odd_bgr, cv2.COLOR_BGR2GRAY)
    sixteen = gray.astype(np.uint16) * 257  # full-range 16-bit
    bgra = np.dstack([odd_bgr, np.full((11, 17), 200, np.uint8)])
    for data in (encode(gray), encode(sixteen, ".tiff"), encode(sixteen), encode(bgra)):
        image, _ = decode_image(data)
        assert image.shape == (11, 17, 3) and image.dtype == np.uint8
    image, _ = decode_image(encode(sixteen, ".tiff"))
    assert np.abs(image[:, :, 0].astype(int) - gray).max() <= 1  # top 8 bits kept
    image, _ = decode_image(encode(bgra))
    assert np.array_equal(image, odd_bgr)  # alpha dropped, colour intact


def test_gray_mode_returns_single_channel(odd_bgr):
    image, _ = decode_image(encode(odd_bgr), color="gray")
    assert image.shape == (11, 17)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (bytes(range(256)) * 4, "not an image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
    ],
)
def test_garbage_is_refused_with_a_reason(data, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(data)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_files_are_refused_not_half_decoded(rng, ext):
    image = rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
    data = encode(image, ext)
    with pytest.raises(ImageDecodeError, match=r"truncated|corrupt"):
        decode_image(data[: len(data) // 2])


def test_bomb_header_is_refused_before_decoding():
    data = png_bomb(30000, 30000)
    assert read_image_info(data).pixels == 900_000_000
    with pytest.raises(ImageTooLargeError, match="900,000,000 pixels"):
        decode_image(data)


def test_pixel_limit_is_configurable(odd_bgr):
    with pytest.raises(ImageTooLargeError):
        decode_image(encode(odd_bgr), max_pixels=100)


def test_reduced_jpeg_decoding_keeps_at_least_the_model_input(rng):
    frame = rng.integers(0, 256, size=(1024, 1280, 3), dtype=np.uint8)
    data = encode(frame, ".jpg")
    info = read_image_info(data)
    assert reduction_factor(info, (224, 224)) == 4
    assert reduction_factor(info, (600, 600)) == 1
    assert reduction_factor(info, None) == 1
    image, _ = decode_image(data, min_size=(224, 224))
    assert image.shape == (256, 320, 3)
    png_info = read_image_info(encode(frame[:, :, 0]))
    assert reduction_factor(png_info, (32, 32)) == 1  # only JPEG decodes faster when reduced
