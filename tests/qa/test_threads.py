"""The QA batch runner's threads: planned from the job's own first files, or as the user set them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inspection.bundle import Bundle
from inspection.cores import usable_cores
from qa.threads import batch_predictor
from tests.support import session_threads


def test_the_batch_runner_plans_from_the_job_files(tiny_bundle: Bundle, tmp_path: Path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"f{i}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
        paths.append(path)
    predictor, workers, layout = batch_predictor(tiny_bundle, [tmp_path / "missing.jpg", *paths], backend="onnx")
    assert layout is not None and layout.decode_ms > 0 and workers == usable_cores() + 1
    assert session_threads(predictor) == layout.infer
    predictor, workers, layout = batch_predictor(tiny_bundle, paths, backend="onnx", workers=5, threads=2)
    assert layout is None and workers == 5 and session_threads(predictor) == 2  # what the user set is kept
    predictor, workers, layout = batch_predictor(tiny_bundle, paths, backend="onnx", workers=5)
    assert workers == 5 and layout is not None and layout.decode == 5  # the plan printed is what runs
