import numpy as np
import pytest

from inspection.errors import PreprocessError
from inspection.preprocess import PreprocessConfig, Preprocessor


def test_output_is_chw_with_height_and_width_in_place(odd_bgr):
    pre = Preprocessor(PreprocessConfig(input_size=(13, 7)))
    out = pre(odd_bgr)
    assert out.shape == (3, 13, 7) and out.dtype == np.float32
    assert pre.batch([odd_bgr, odd_bgr]).shape == (2, 3, 13, 7)


def test_channels_are_reordered_to_rgb_and_normalized():
    blue = np.zeros((11, 17, 3), np.uint8)
    blue[:, :, 0] = 255  # OpenCV order: B first
    pre = Preprocessor(PreprocessConfig(input_size=(11, 17), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    out = pre(blue)
    assert np.allclose(out[2], 1.0) and np.allclose(out[0], -1.0) and np.allclose(out[1], -1.0)


def test_gray_mode_gives_one_channel_from_colour_or_gray(odd_bgr):
    pre = Preprocessor(PreprocessConfig(input_size=(5, 9), color="gray", mean=(0.5,), std=(0.25,)))
    assert pre(odd_bgr).shape == (1, 5, 9)
    assert pre(odd_bgr[:, :, 0]).shape == (1, 5, 9)


def test_roi_crop_and_its_scaling_for_reduced_decodes():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:20, 30:50] = 255
    pre = Preprocessor(PreprocessConfig(input_size=(10, 20), mean=(0, 0, 0), std=(1, 1, 1), roi=(30, 10, 20, 10)))
    assert np.allclose(pre(image), 1.0)  # the ROI holds only the white patch
    half = image[::2, ::2]  # the same scene decoded at 1/2 resolution
    assert np.allclose(pre(half, captured=(40, 60)), 1.0)


def test_roi_outside_the_image_is_a_clear_error(odd_bgr):
    pre = Preprocessor(PreprocessConfig(input_size=(4, 4), roi=(100, 100, 5, 5)))
    with pytest.raises(PreprocessError, match="ROI"):
        pre(odd_bgr)


def test_min_decode_size_accounts_for_the_roi():
    cfg = PreprocessConfig(input_size=(100, 100), roi=(0, 0, 500, 400))
    assert cfg.min_decode_size((1000, 1000)) == (250, 200)
    assert cfg.min_decode_size(None) == (100, 100)


def test_mean_and_std_must_match_the_colour_mode():
    with pytest.raises(ValueError, match="mean and std"):
        PreprocessConfig(input_size=(4, 4), color="gray")
