"""The batch runner: stable file discovery, one result per file in order, error rows for bad
files, the same verdicts as the plain predictor, heatmaps only where asked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.explain import Explainer
from inspection.predictor import Predictor
from inspection.types import Outcome
from qa.batch import BatchRunner
from qa.images import EXT, THUMB_SIDE
from qa.paths import InputPathError, collect_paths
from tests.support import encode, png_bomb


@pytest.fixture(scope="module")
def predictor(tiny_bundle) -> Predictor:
    return Predictor(tiny_bundle, batch_size=3)


def write_tree(root: Path, rng) -> dict[str, bytes]:
    files = {
        "b/2.png": encode(rng.integers(0, 256, size=(31, 45, 3), dtype=np.uint8)),
        "b/10.jpg": encode(rng.integers(0, 256, size=(47, 61, 3), dtype=np.uint8), ".jpg"),
        "a.JPG": encode(rng.integers(0, 256, size=(11, 17, 3), dtype=np.uint8), ".jpg"),
        "c/d/gray.png": encode(rng.integers(0, 256, size=(29, 13), dtype=np.uint8)),
        "c/empty.jpg": b"",
        "c/random.png": rng.bytes(1500),
        "c/bomb.png": png_bomb(30000, 30000),
        "notes.txt": b"not an image",
        ".hidden/x.png": encode(rng.integers(0, 256, size=(9, 9, 3), dtype=np.uint8)),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def rel(paths, root):
    return [p.relative_to(root).as_posix() for p in paths]


def test_folders_are_walked_recursively_in_a_stable_order(tmp_path, rng):
    write_tree(tmp_path, rng)
    found = collect_paths([tmp_path])
    assert rel(found, tmp_path) == ["a.JPG", "b/10.jpg", "b/2.png", "c/bomb.png", "c/d/gray.png", "c/empty.jpg",
                                    "c/random.png"]  # no .txt, nothing hidden
    # explicit files come first in the order given, are kept whatever their suffix, and are never listed twice
    mixed = collect_paths([tmp_path / "notes.txt", tmp_path / "b", str(tmp_path / "c" / "*.png"), tmp_path / "b/2.png"])
    assert rel(mixed, tmp_path) == ["notes.txt", "b/10.jpg", "b/2.png", "c/bomb.png", "c/random.png"]
    assert rel(collect_paths([f"{tmp_path}/**/*.png"]), tmp_path) == ["b/2.png", "c/bomb.png", "c/d/gray.png",
                                                                     "c/random.png"]


def test_a_path_that_names_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(InputPathError, match="does not exist"):
        collect_paths([tmp_path / "nope"])
    with pytest.raises(InputPathError, match="matches no file"):
        collect_paths([str(tmp_path / "*.jpg")])


@pytest.mark.parametrize("workers", [1, 3])
def test_one_result_per_file_in_order_with_error_rows(predictor, tmp_path, rng, workers):
    write_tree(tmp_path, rng)
    paths = collect_paths([tmp_path, tmp_path / "notes.txt"])
    seen = []
    results = list(BatchRunner(predictor, workers=workers).run(paths, progress=seen.append))
    assert [r.path for r in results] == [str(p) for p in paths] == [r.path for r in seen]
    by_name = {Path(r.path).name: r for r in results}
    errors = {n for n, r in by_name.items() if r.error}
    assert errors == {"bomb.png", "empty.jpg", "random.png", "notes.txt"}
    assert "pixels" in by_name["bomb.png"].error and "empty" in by_name["empty.jpg"].error
    assert all(r.outcome == "error" and r.verdict is None for n, r in by_name.items() if n in errors)
    good = [r for r in results if not r.error]
    assert {r.size for r in good} == {(31, 45), (47, 61), (11, 17), (29, 13)}
    for r in good:
        assert r.sha256 and len(r.sha256) == 64
        thumb = cv2.imdecode(np.frombuffer(r.thumbnail, np.uint8), cv2.IMREAD_COLOR)  # in the report's format:
        assert (r.thumbnail[8:12] == b"WEBP") == (EXT == ".webp")  # the report keeps it, no second encode
        assert thumb.shape[:2] == r.size  # these frames are smaller than THUMB_SIDE: not enlarged
        assert max(thumb.shape[:2]) <= THUMB_SIDE
        assert r.heatmap is None  # no explainer given


def test_batched_pipeline_gives_the_predictors_verdicts(predictor, tmp_path, rng):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(encode(rng.integers(0, 256, size=(40 + i, 57, 3), dtype=np.uint8)))
    results = list(BatchRunner(predictor, workers=2).run(paths))
    assert [r.verdict.batch_size for r in results] == [3, 3, 3, 3, 3, 3, 1]
    direct = [it.verdict for it in predictor.run([predictor.preparer.from_image(cv2.imread(str(p))) for p in paths])]
    for r, v in zip(results, direct, strict=True):
        assert r.verdict.label == v.label and r.verdict.outcome == v.outcome
        assert r.verdict.defect_score == pytest.approx(v.defect_score, abs=1e-5)


def test_heatmaps_only_for_the_outcomes_asked(predictor, tmp_path, rng):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(encode(rng.integers(0, 256, size=(33, 49, 3), dtype=np.uint8), ".jpg"))
    explainer = Explainer(predictor.bundle)
    everyone = set(Outcome)
    results = list(BatchRunner(predictor, explainer=explainer, explain=everyone).run(paths))
    for r in results:
        img = cv2.imdecode(np.frombuffer(r.heatmap, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (33, 49, 3) and r.heatmap_target in ("scratch", "dent")
        x, y = r.heatmap_peak
        assert 0 <= x < 49 and 0 <= y < 33
    none = list(BatchRunner(predictor, explainer=explainer, explain=()).run(paths))
    assert all(r.heatmap is None for r in none)
