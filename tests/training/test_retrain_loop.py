"""The whole retraining loop on simulated data (examples/retrain_loop.py, small settings).

A champion trained without stains lets most golden stains pass; stain samples go in
through POST /v1/samples; the retrained challenger is promoted, the running service swaps to it
under 16-station load with zero failed requests and then catches the stains; rollback brings
the first champion back (and its escapes with it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_retrain_loop_end_to_end(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("retrain_loop", ROOT / "examples" / "retrain_loop.py")
    assert spec is not None and spec.loader is not None
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    out = loop.run_loop(tmp_path / "work", n_base=300, n_golden=120, n_new=60, epochs=12, retrain_epochs=8,
                        load_s=4.0)
    assert out["escape_before"] >= 0.5, out  # the champion really misses the held-out type
    assert out["status"] == "promoted", out
    assert out["escape_after"] <= 0.2 and out["escape_after"] < out["escape_before"], out
    assert out["load_requests"] > 16 and out["load_failed"] == 0, out
    assert out["versions"][out["challenger"]] > 0, out  # the swap happened during the load
    assert out["rolled_back_to"] == out["champion"] == out["served_after_rollback"], out
    assert out["escape_after_rollback"] == out["escape_before"], out
