"""Shared by the train_* accuracy benchmarks: run training on a dataset and print one table row."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

# run as a script from anywhere: the checkout's packages win over any installed copy
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspection.bundle import load_bundle
from inspection.cores import usable_cores
from training import TrainConfig, train


def cores() -> int:
    return usable_cores()


def run(config: TrainConfig, *, title: str, restart: bool = False) -> dict[str, Any]:
    """Train (resuming if interrupted), print the figures that go into BENCHMARKS.md, return them."""
    t0 = time.perf_counter()
    result = train(config, progress=False, restart=restart)
    wall = time.perf_counter() - t0
    test = result.test_metrics or {}
    card = load_bundle(result.bundle_path, verify=False).card  # the resolved architecture and input
    pf = test.get("pass_fail") or {}
    row = {
        "benchmark": title, "arch": card.arch, "input": f"{card.preprocess.input_size[0]}x"
        f"{card.preprocess.input_size[1]} {card.preprocess.color}"
        + (f" fixture={card.preprocess.fixture}" if card.preprocess.fixture else ""),
        "pretrained": config.weights or "none (from scratch)",
        "test_images": test.get("n"), "test_accuracy": test.get("accuracy"), "test_macro_f1": test.get("macro_f1"),
        "escape_rate": pf.get("escape_rate"), "false_reject_rate": pf.get("false_reject_rate"),
        "roc_auc": pf.get("roc_auc"), "fail_threshold": pf.get("fail_threshold"),
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stop": result.stop_reason,
        "train_seconds": result.train_seconds, "wall_seconds_this_call": round(wall, 1),
        "resumed_from_epoch": result.resumed_from_epoch, "cpu_cores": cores(), "cpu": platform.processor(),
        "bundle": str(result.bundle_path),
    }
    print(json.dumps(row, indent=2))
    Path(config.out, "benchmark.json").write_text(json.dumps(row, indent=2))

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}%"

    print(f"\n| {title} | {card.arch} {row['input']} | {pct(row['test_accuracy'])} | {pct(row['escape_rate'])} | "
          f"{pct(row['false_reject_rate'])} | {row['train_seconds'] / 60:.1f} min ({row['epochs_run']} epochs) |")
    return row
