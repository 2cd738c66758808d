"""What a finished training run returns (and writes to RUN/result.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    bundle_path: Path
    best_epoch: int
    epochs_run: int
    stop_reason: str  # "completed", "early stopping", "time limit"
    train_seconds: float
    val_metrics: dict[str, Any]
    test_metrics: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    resumed_from_epoch: int | None = None
    skipped_images: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"], d["bundle_path"] = str(self.run_dir), str(self.bundle_path)
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainResult:
        values = dict(raw)
        values["run_dir"], values["bundle_path"] = Path(raw["run_dir"]), Path(raw["bundle_path"])
        return cls(**values)
