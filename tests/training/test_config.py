from __future__ import annotations

import json

import pytest

from training.config import AugmentConfig, TrainConfig, TrainConfigError, augment_from_dict, parse_overrides


def test_json_round_trip_keeps_every_field() -> None:
    cfg = TrainConfig(data="d", out="o", input_size=(96, 160), color="gray", augment=AugmentConfig(vflip=0.0))
    back = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg
    assert back.resolved_mean == (0.5,)


def test_unknown_and_invalid_options_are_refused_with_their_names() -> None:
    with pytest.raises(TrainConfigError, match="lrate"):
        TrainConfig.from_dict({"data": "d", "out": "o", "lrate": 1})
    with pytest.raises(TrainConfigError, match="epochs"):
        TrainConfig(data="d", out="o", epochs=0)
    with pytest.raises(TrainConfigError, match="probability"):
        AugmentConfig(hflip=2)
    with pytest.raises(TrainConfigError, match="either"):
        TrainConfig(data="d", out="o", weights="IMAGENET1K_V1", init_from="b")


def test_augment_overrides() -> None:
    aug = augment_from_dict(parse_overrides(["vflip=0", "rotate_limit=3"]))
    assert (aug.vflip, aug.rotate_limit, aug.hflip) == (0.0, 3.0, 0.5)
    with pytest.raises(TrainConfigError, match="KEY=NUMBER"):
        parse_overrides(["vflip"])
    with pytest.raises(TrainConfigError, match="unknown augmentation"):
        augment_from_dict({"flip": 1})


def test_runtime_only_fields_do_not_block_resume() -> None:
    a = TrainConfig(data="d", out="o", threads=1)
    assert a.result_fields() == a.with_(threads=2, time_limit_min=5).result_fields()
    assert a.result_fields() != a.with_(lr=0.1).result_fields()
