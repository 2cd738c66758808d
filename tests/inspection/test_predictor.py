"""The one pipeline: bytes or frames -> Items with verdicts, every stage timed, batching irrelevant."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from inspection.errors import ImageDecodeError, ImageTooLargeError
from inspection.predictor import Item, Predictor
from inspection.timing import STAGES
from inspection.types import Outcome
from tests.support import encode, png_bomb


@pytest.fixture(scope="module")
def predictor(tiny_bundle) -> Predictor:
    return Predictor(tiny_bundle, batch_size=3)


def images(rng, n):
    return [rng.integers(0, 256, size=(11 + i, 17, 3), dtype=np.uint8) for i in range(n)]


def test_verdicts_come_back_in_order_with_stage_timings(predictor, rng):
    items = [predictor.load(encode(im), source=f"f{i}") for i, im in enumerate(images(rng, 7))]
    out = predictor.run(items)
    assert [it.source for it in out] == [f"f{i}" for i in range(7)]
    assert [it.verdict.batch_size for it in out] == [3, 3, 3, 3, 3, 3, 1]
    v = out[0].verdict
    assert set(v.timings_ms) == {"decode", "preprocess", "inference", "decision"} and set(v.timings_ms) <= set(STAGES)
    assert v.outcome in set(Outcome) and v.label in v.scores
    assert sum(v.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert v.model_version == predictor.card.version


def test_batching_does_not_change_any_verdict(predictor, rng):
    items = [predictor.load(encode(im), source=f"f{i}") for i, im in enumerate(images(rng, 5))]
    batched = predictor.run(items)
    single = [predictor.run([it])[0] for it in items]
    for a, b in zip(batched, single, strict=True):
        assert a.verdict.outcome == b.verdict.outcome and a.verdict.label == b.verdict.label
        assert a.verdict.defect_score == pytest.approx(b.verdict.defect_score, abs=1e-5)


def test_decoded_bytes_match_the_frame_path(predictor, rng):
    image = rng.integers(0, 256, size=(300, 410, 3), dtype=np.uint8)
    item = predictor.load(encode(image), source="x.png", sha256=True)
    assert item.size == (300, 410) and item.timings["decode"] > 0 and item.format == "png" and len(item.sha256) == 64
    a = predictor.run([item])[0]
    b = predictor.run([predictor.preparer.from_image(image)])[0]
    assert a.verdict.defect_score == pytest.approx(b.verdict.defect_score, abs=1e-6)


def test_a_bad_input_becomes_an_item_with_its_error_and_travels_on(predictor, rng):
    good = predictor.load(encode(images(rng, 1)[0]))
    bad = predictor.load(b"\x00garbage", source="junk")
    bomb = predictor.load(png_bomb(), source="bomb")
    assert isinstance(bad.error, ImageDecodeError) and isinstance(bomb.error, ImageTooLargeError)
    out = predictor.run([bad, good, bomb])
    assert [it.verdict is not None for it in out] == [False, True, False]
    assert out[1].verdict.batch_size == 1  # only the decodable image was inferred


def test_a_frame_the_gate_refuses_is_invalid_whatever_the_scores(tiny_bundle, rng):
    from inspection.quality import QualityResult

    p = Predictor(tiny_bundle)
    item = p.load(encode(images(rng, 1)[0]))
    refused = replace(item, quality=QualityResult(False, "too_dark", "under-exposed: check the light", {}))
    out = p.run([refused])[0].verdict
    assert out.outcome is Outcome.INVALID and out.label == "too_dark" and out.reason.startswith("under-exposed")
    assert out.confidence == 0.0 and out.scores  # classified anyway: the scores are kept for diagnosis


def test_gray_bundle_inspects_colour_frames(tmp_path, rng):
    from tests.support import make_tiny_bundle

    p = Predictor.from_path(make_tiny_bundle(tmp_path / "g", color="gray").path)
    item = p.load(encode(rng.integers(0, 256, size=(33, 45, 3), dtype=np.uint8), ".jpg"), keep_image=True)
    assert item.image.ndim == 2 and item.prepared.shape[2] == 1
    assert p.run([item])[0].verdict.label in ("good", "scratch", "dent")
    assert Item().ok


def test_cli_gives_verdicts_and_one_clear_error_per_bad_file(tiny_bundle, tmp_path, rng):
    import cv2

    image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    good = {
        "part.jpg": encode(image, ".jpg"),
        "part.png": encode(image),
        "part16.tiff": encode(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257, ".tiff"),
        "part_bgra.png": encode(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])),
    }
    jpeg = encode(image, ".jpg")
    bad = {
        "empty.jpg": b"",
        "random.png": rng.bytes(2048),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bomb.png": png_bomb(30000, 30000),
    }
    for name, data in {**good, **bad}.items():
        (tmp_path / name).write_bytes(data)
    names = ["part.jpg", "empty.jpg", "part.png", "random.png", "part16.tiff", "truncated.jpg",
             "part_bgra.png", "bomb.png"]
    proc = subprocess.run(
        [sys.executable, "-m", "defectscope", "inspect", *[str(tmp_path / n) for n in names],
         "--model", str(tiny_bundle.path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    verdict_lines = [line for line in proc.stdout.splitlines() if line.split()[:1] in (["pass"], ["fail"], ["review"])]
    assert sorted(line.split()[1].rsplit("/", 1)[-1] for line in verdict_lines) == sorted(good)
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert sorted(line.split()[1].rsplit("/", 1)[-1].rstrip(":") for line in error_lines) == sorted(bad)
    assert "pixels" in proc.stderr and "truncated" in proc.stderr and "empty" in proc.stderr
