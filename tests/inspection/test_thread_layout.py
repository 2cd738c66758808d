"""The thread plan: cores split in the ratio of the measured stage costs, the container's quota
respected, costs measured on this machine (the service and the batch runner: their own tests)."""

from __future__ import annotations

from pathlib import Path

from inspection.bundle import Bundle
from inspection.cores import cgroup_quota, usable_cores
from inspection.predictor import Predictor
from inspection.thread_layout import frame_cost, infer_cost, plan, planned_predictor
from tests.support import session_threads


def test_plan_splits_the_cores_in_the_ratio_of_the_costs():
    cheap = plan(8, decode_s=4e-3, infer_s=1e-3)  # a small network on large frames: decoding is the work
    assert (cheap.decode, cheap.infer) == (8, 2)
    heavy = plan(8, decode_s=4e-3, infer_s=30e-3)
    assert (heavy.decode, heavy.infer) == (8, 8)
    assert plan(2, 4e-3, 1e-3).infer == 1 and plan(2, 4e-3, 30e-3).infer == 2  # the 2-core figures measured
    assert plan(1, 0.0, 0.0).infer == 1  # never zero threads
    assert plan(4, 1e-3, 1e-3).infer == 2 and plan(2, 4.3e-3, 9.3e-3).infer == 2  # rounded up, not past
    assert plan(4, 1e-3, 1e-3, reads_files=True).decode == 5
    assert "4 decode and 2 inference threads for 4 cores" in plan(4, 1e-3, 1e-3).describe()


def test_container_quota_limits_the_cores(tmp_path: Path):
    v2 = tmp_path / "cpu.max"
    v2.write_text("150000 100000\n")
    assert cgroup_quota(v2) == 1.5
    v2.write_text("max 100000\n")
    assert cgroup_quota(v2) is None
    q, p = tmp_path / "quota", tmp_path / "period"
    q.write_text("-1\n"), p.write_text("100000\n")
    assert cgroup_quota(tmp_path / "absent", (q, p)) is None
    q.write_text("200000\n")
    assert cgroup_quota(tmp_path / "absent", (q, p)) == 2.0
    assert cgroup_quota(tmp_path / "absent", (tmp_path / "x", tmp_path / "y")) is None  # no cgroup: no quota
    assert usable_cores() >= 1


def test_costs_are_measured_on_this_machine(tiny_bundle: Bundle):
    p = Predictor(tiny_bundle, backend="onnx", threads=1)
    small, large = frame_cost(p, (120, 160)), frame_cost(p, (960, 1280))
    assert 0 < small < large  # 64 times the pixels cost more to decode
    assert infer_cost(p) > 0


def test_planned_predictor_follows_the_measured_split(tiny_bundle: Bundle):
    heavy_decode, layout = planned_predictor(tiny_bundle, lambda p: 1.0, backend="onnx", cores=4)
    assert layout is not None and layout.infer == 1 and session_threads(heavy_decode) == 1
    free_decode, layout = planned_predictor(tiny_bundle, lambda p: 0.0, backend="onnx", cores=4)
    assert layout is not None and layout.infer == 4 and session_threads(free_decode) == 4
    # PyTorch keeps its own thread pool: no plan, its default threads
    torch_pred, layout = planned_predictor(tiny_bundle, lambda p: 0.0, backend="torch", cores=4)
    assert layout is None and torch_pred.backend.name == "torch"
