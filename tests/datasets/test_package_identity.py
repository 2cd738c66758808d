"""``datasets`` must be this project's package, never the Hugging Face one of the same name."""

from pathlib import Path

import datasets

REPO = Path(__file__).resolve().parents[2]


def test_datasets_is_ours() -> None:
    assert datasets.DEFECTSCOPE_DATASETS is True
    assert Path(datasets.__file__).resolve().parent == REPO / "datasets"
