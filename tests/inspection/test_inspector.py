import subprocess
import sys

import numpy as np
import pytest

from inspection.errors import ImageDecodeError
from inspection.inspector import Inspector
from inspection.types import Frame, Outcome
from tests.support import encode, png_bomb


@pytest.fixture(scope="module")
def inspector(tiny_bundle) -> Inspector:
    return Inspector(tiny_bundle, batch_size=3)


def frames(rng, n):
    return [Frame(rng.integers(0, 256, size=(11 + i, 17, 3), dtype=np.uint8), source=f"f{i}") for i in range(n)]


def test_verdicts_come_back_in_order_with_stage_timings(inspector, rng):
    fs = frames(rng, 7)
    verdicts = inspector.inspect(fs)
    assert [v.source for v in verdicts] == [f.source for f in fs]
    assert [v.batch_size for v in verdicts] == [3, 3, 3, 3, 3, 3, 1]
    v = verdicts[0]
    assert set(v.timings_ms) == {"decode", "preprocess", "inference", "decision"}
    assert v.outcome in set(Outcome) and v.label in v.scores
    assert sum(v.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert v.model_version == inspector.card.version


def test_batching_does_not_change_any_verdict(inspector, rng):
    fs = frames(rng, 5)
    batched = inspector.inspect(fs)
    single = [inspector.inspect_one(f) for f in fs]
    for a, b in zip(batched, single, strict=True):
        assert a.outcome == b.outcome and a.label == b.label
        assert a.defect_score == pytest.approx(b.defect_score, abs=1e-5)
    assert [v.source for v in inspector.inspect_stream(iter(fs))] == [f.source for f in fs]


def test_decoded_bytes_match_the_frame_path(inspector, rng):
    image = rng.integers(0, 256, size=(300, 410, 3), dtype=np.uint8)
    frame = inspector.decode(encode(image), source="x.png")
    assert frame.size == (300, 410) and frame.meta["decode_ms"] > 0
    a = inspector.inspect_one(frame)
    b = inspector.inspect_one(Frame(image))
    assert a.defect_score == pytest.approx(b.defect_score, abs=1e-6)
    with pytest.raises(ImageDecodeError):
        inspector.decode(b"\x00garbage")


def test_gray_bundle_inspects_colour_frames(tmp_path, rng):
    from tests.support import make_tiny_bundle

    inspector = Inspector(make_tiny_bundle(tmp_path / "g", color="gray"))
    frame = inspector.decode(encode(rng.integers(0, 256, size=(33, 45, 3), dtype=np.uint8), ".jpg"))
    assert frame.image.ndim == 2
    assert inspector.inspect_one(frame).label in ("good", "scratch", "dent")


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
