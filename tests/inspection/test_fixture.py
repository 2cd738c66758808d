"""Part fixturing: the crop follows the part, and heatmaps map back through the same box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspection.fixture import crop_box, fixture_box, locate_part
from inspection.preprocess import PreprocessConfig, Preprocessor


def frame_with_disc(center: tuple[int, int], radius: int = 30, size: tuple[int, int] = (121, 163)) -> np.ndarray:
    img = np.full(size, 40, np.uint8)
    cv2.circle(img, center, radius, 200, -1)
    return img


@pytest.mark.parametrize("center", [(50, 60), (110, 70), (81, 45)])
def test_the_box_is_centred_on_the_part_wherever_it_lies(center):
    img = frame_with_disc(center)
    x, y, w, h = fixture_box(img, "bright", margin=0.1, aspect=1.0)
    assert abs((x + w / 2) - center[0]) <= 1.5 and abs((y + h / 2) - center[1]) <= 1.5
    assert w == h and abs(w - 61 * 1.2) <= 4  # diameter 61 grown by 10% per side


def test_a_dark_part_is_found_with_dark_polarity():
    img = 255 - frame_with_disc((70, 50))
    assert locate_part(img, "bright") != locate_part(img, "dark")
    x, y, w, h = locate_part(img, "dark")
    assert abs(x + w / 2 - 70.5) <= 1 and abs(y + h / 2 - 50.5) <= 1


def test_no_part_means_the_whole_frame():
    flat = np.full((37, 53), 90, np.uint8)
    assert fixture_box(flat, "bright", 0.05, 1.0) == (0, 0, 53, 37)


def test_crop_box_pads_by_replicating_where_the_box_leaves_the_frame():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = crop_box(img, (-1, -1, 3, 3))
    assert out.shape == (3, 3)
    assert out[0, 0] == img[0, 0] and out[2, 2] == img[1, 1]


def test_prepare_with_a_fixture_sees_the_part_centred_and_large(odd_bgr):
    pre = Preprocessor(PreprocessConfig(input_size=(32, 32), color="gray", mean=(0.5,), std=(0.25,),
                                        fixture="bright", fixture_margin=0.0))
    a = pre.prepare(frame_with_disc((50, 60)))
    b = pre.prepare(frame_with_disc((110, 70)))
    assert a.shape == (32, 32, 1)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # the same part, shifted: the same input
    assert a[16, 16, 0] > 150 and a[0, 0, 0] < 100  # the disc fills the input


def test_mask_follows_the_image_through_the_fixture():
    img = frame_with_disc((110, 70))
    mask = np.zeros_like(img)
    mask[70, 110] = 255  # the part's centre
    pre = Preprocessor(PreprocessConfig(input_size=(16, 16), color="gray", mean=(0.5,), std=(0.25,),
                                        fixture="bright"))
    _, m = pre.prepare_with_mask(img, cv2.resize(mask, (326, 242), interpolation=cv2.INTER_NEAREST))
    ys, xs = np.nonzero(m)
    assert m.shape == (16, 16) and len(ys) >= 1
    assert abs(ys.mean() - 7.5) <= 1.5 and abs(xs.mean() - 7.5) <= 1.5


def test_bad_fixture_settings_are_refused():
    with pytest.raises(ValueError, match="fixture"):
        PreprocessConfig(input_size=(8, 8), fixture="sideways")
    with pytest.raises(ValueError, match="fixture_margin"):
        PreprocessConfig(input_size=(8, 8), fixture="bright", fixture_margin=2.0)
