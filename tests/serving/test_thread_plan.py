"""The service's inference threads: planned again for every model it loads, unless set."""

from __future__ import annotations

import logging

import pytest

from inspection.bundle import Bundle
from inspection.cores import usable_cores
from serving.config import Settings
from serving.reload import open_predictor
from tests.support import session_threads


def test_the_service_plans_its_threads_for_each_model(tiny_bundle: Bundle, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="defectscope.serving"):
        predictor = open_predictor(Settings(auth_disabled=True, backend="onnx", frame_size="640x480"), tiny_bundle.path)
    assert "thread plan for tiny on 640x480 frames" in caplog.text
    assert 1 <= session_threads(predictor) <= usable_cores()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="defectscope.serving"):
        open_predictor(Settings(auth_disabled=True, backend="onnx", decode_threads=7), tiny_bundle.path)
    assert "7 decode and" in caplog.text  # the decode threads the service runs, not the plan's
    fixed = open_predictor(Settings(auth_disabled=True, backend="onnx", threads=1), tiny_bundle.path)
    assert session_threads(fixed) == 1
    with pytest.raises(ValueError, match="frame_size"):
        Settings(auth_disabled=True, frame_size="1280 by 1024")
