"""Early stopping and the time limit: which epoch is best, and when to stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from training.config import TrainConfig


def score(metrics: dict[str, Any], monitor: str) -> tuple[float, ...]:
    """Larger is better; ties on accuracy or F1 go to the lower validation loss; "last" keeps the
    latest epoch (the end of the cosine schedule)."""
    if monitor == "last":
        return (float(metrics["epoch"]),)
    if monitor == "loss":
        return (-metrics["val_loss"],)
    return (metrics[f"val_{'acc' if monitor == 'accuracy' else monitor}"], -metrics["val_loss"])


@dataclass
class Progress:
    """The part of a run that a checkpoint must carry to resume it exactly."""

    epoch: int = 0
    best_score: tuple[float, ...] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0

    KEYS = ("epoch", "best_score", "best_epoch", "bad_epochs", "history", "elapsed")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Progress:
        p = cls(**{k: raw[k] for k in cls.KEYS})
        p.best_score = tuple(p.best_score) if p.best_score is not None else None
        return p

    def record(self, row: dict[str, Any], monitor: str) -> bool:
        """Add an epoch's row; True when it is the best so far."""
        s = score(row, monitor)
        improved = self.best_score is None or s > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = s, row["epoch"], 0
        else:
            self.bad_epochs += 1
        row["best"] = improved
        self.history.append(row)
        self.epoch = row["epoch"]
        return improved

    def stop_reason(self, config: TrainConfig) -> str | None:
        if config.patience and self.bad_epochs >= config.patience and self.epoch >= config.min_epochs:
            return "early stopping"
        if config.time_limit_min is not None and self.elapsed / 60 >= config.time_limit_min:
            return "time limit"
        return None
