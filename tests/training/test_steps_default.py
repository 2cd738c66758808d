"""A small training split gets the optimizer steps the whole-frame defaults were tuned on: its
epochs, patience and earliest stop stretched (and said); what the user set, and large splits, stay."""

from __future__ import annotations

from training.config import TrainConfig
from training.recipe import REFERENCE_STEPS, WHOLE_FRAME_DEFAULTS, stretch_to_steps


def _defaults(**kw) -> TrainConfig:
    base = {k: v for k, v in WHOLE_FRAME_DEFAULTS.items() if k not in kw}
    return TrainConfig(data="d", out="o", recipe="whole-frame", **base, **kw)


def test_a_first_few_hundred_frames_get_the_steps_of_a_large_set():
    config, why = stretch_to_steps(_defaults(), 280)  # `dataset synth --n 400`: 280 train, 17 steps an epoch
    assert config.epochs == 148 and config.patience == 37 and config.min_epochs == 56
    assert config.epochs * (280 // 16) >= REFERENCE_STEPS
    assert "280 training images give 17 steps an epoch, so 148 epochs (patience 37)" in why


def test_large_sets_and_what_the_user_set_are_left_alone():
    big = _defaults()
    assert stretch_to_steps(big, 1400) == (big, "")  # the 2,000-frame line: 3,500 steps already
    assert stretch_to_steps(big, 1080)[0].epochs == 40  # NEU-DET's 60 % split: 2,700
    own = _defaults(min_epochs=5)
    config, _ = stretch_to_steps(own, 280, patience=False)
    assert config.min_epochs == 5 and config.patience == 10 and config.epochs == 148
