"""The run folder: resolved config, metrics log, plots, checkpoints, the bundle and a result summary.

    RUN/config.json            the resolved TrainConfig
    RUN/metrics.jsonl          one JSON line per epoch
    RUN/learning_curves.png
    RUN/checkpoints/last.pt    everything needed to resume; best.pt: weights of the best epoch
    RUN/bundle/                the model bundle (inspection.bundle)
    RUN/eval_test/             evaluation report on the test split
    RUN/result.json            summary written last: its presence means the run finished
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspection.atomic import write_text_atomic
from training.checkpoint import BEST, LAST
from training.config import TrainConfig, TrainConfigError


@dataclass(frozen=True)
class RunDir:
    root: Path

    config = property(lambda self: self.root / "config.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    curves = property(lambda self: self.root / "learning_curves.png")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last = property(lambda self: self.root / "checkpoints" / LAST)
    best = property(lambda self: self.root / "checkpoints" / BEST)
    bundle = property(lambda self: self.root / "bundle")
    eval_test = property(lambda self: self.root / "eval_test")
    result = property(lambda self: self.root / "result.json")

    def prepare(self, config: TrainConfig, *, restart: bool) -> None:
        """Create the folder, or check that it holds this same run before resuming it."""
        if restart:
            for p in (self.metrics, self.curves, self.result, self.config):
                p.unlink(missing_ok=True)
            shutil.rmtree(self.checkpoints, ignore_errors=True)
        if self.config.is_file():
            try:
                previous = json.loads(self.config.read_text())
            except (OSError, json.JSONDecodeError):
                previous = None
            if previous is not None:
                old = TrainConfig.from_dict(previous).result_fields()
                new = config.result_fields()
                differ = sorted(k for k in new if old.get(k) != new[k])
                if differ:
                    raise TrainConfigError(
                        f"{self.root} holds a run with different settings ({', '.join(differ)}): "
                        "choose another --out, or pass --restart to discard that run"
                    )
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.config, config.to_json())

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """Rewritten whole from the checkpoint's history, so a resumed run never logs an epoch twice."""
        write_text_atomic(self.metrics, "".join(json.dumps(h, sort_keys=True) + "\n" for h in history))

    def finished(self) -> dict[str, Any] | None:
        if self.result.is_file() and self.bundle.is_dir():
            try:
                return json.loads(self.result.read_text())
            except (OSError, json.JSONDecodeError):
                return None
        return None
