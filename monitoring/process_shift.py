"""Which process parameters moved with an alarm: the recent parts against the baseline, per parameter.

Pure logic beside the SPC charts. The baseline is the same stretch of parts that set the control
limits; "recent" is the last ``recent`` parts. A numeric parameter moved when its recent mean
lies ``MOVED_SD`` baseline standard deviations or more from its baseline mean (an operational
shift of the parameter itself, not a test of the mean); a categorical one when the share of
its most common recent value changed by ``MOVED_SHARE`` or more (a new tool, another lot).
State is bounded: at most ``MAX_KEYS`` parameters and ``MAX_LEVELS`` values each are tracked.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MOVED_SD = 2.0
MOVED_SHARE = 0.5
MAX_KEYS = 32
MAX_LEVELS = 32


@dataclass
class _Numeric:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:  # Welford: one pass, numerically stable
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


@dataclass
class ProcessShift:
    baseline: int
    recent: int
    seen: int = 0
    numeric: dict[str, _Numeric] = field(default_factory=dict)
    levels: dict[str, Counter[str]] = field(default_factory=dict)
    last: deque[Mapping[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.last = deque(maxlen=self.recent)

    def observe(self, process: Mapping[str, Any] | None) -> None:
        if not process:
            return
        self.seen += 1
        if self.seen > self.baseline:
            self.last.append(process)
            return
        for key, v in process.items():
            if key not in self.numeric and key not in self.levels and len(self.numeric) + len(self.levels) >= MAX_KEYS:
                continue
            if _number(v) is not None:
                self.numeric.setdefault(key, _Numeric()).add(float(v))
            elif isinstance(v, str | bool):
                counts = self.levels.setdefault(key, Counter())
                if str(v) in counts or len(counts) < MAX_LEVELS:
                    counts[str(v)] += 1

    def moved(self) -> list[dict[str, Any]]:
        """The parameters that moved, largest move first (empty before the baseline is complete)."""
        if self.seen <= self.baseline or not self.last:
            return []
        out = []
        for key, ref in self.numeric.items():
            xs = [x for p in self.last if (x := _number(p.get(key))) is not None]
            if len(xs) < max(5, len(self.last) // 2) or ref.n < 2:
                continue
            now = sum(xs) / len(xs)
            shift = (now - ref.mean) / ref.sd if ref.sd > 0 else (math.inf if now != ref.mean else 0.0)
            if abs(shift) >= MOVED_SD:
                out.append({"name": key, "kind": "numeric", "before": round(ref.mean, 4), "now": round(now, 4),
                            "shift_sd": None if math.isinf(shift) else round(shift, 2), "size": abs(shift)})
        for key, ref_counts in self.levels.items():
            now_counts = Counter(str(p[key]) for p in self.last if isinstance(p.get(key), str | bool))
            if not now_counts:
                continue
            level, k = now_counts.most_common(1)[0]
            share_now = k / sum(now_counts.values())
            share_before = ref_counts.get(level, 0) / max(sum(ref_counts.values()), 1)
            if abs(share_now - share_before) >= MOVED_SHARE:
                out.append({"name": key, "kind": "categorical", "level": level, "share_before": round(share_before, 3),
                            "share_now": round(share_now, 3), "size": abs(share_now - share_before) * 10})
        out.sort(key=lambda m: -m["size"])
        return [{k: v for k, v in m.items() if k != "size"} for m in out]


def describe(moved: list[dict[str, Any]], limit: int = 3) -> str:
    """'belt_speed 1.02 -> 1.41 (+3.1 sd), tool_id now T3 (92 % of parts, was 25 %)'."""
    parts = []
    for m in moved[:limit]:
        if m["kind"] == "numeric":
            sd = "" if m["shift_sd"] is None else f" ({m['shift_sd']:+.1f} sd)"
            parts.append(f"{m['name']} {m['before']:.4g} -> {m['now']:.4g}{sd}")
        else:
            parts.append(f"{m['name']} now {m['level']} ({100 * m['share_now']:.0f} % of parts, was "
                         f"{100 * m['share_before']:.0f} %)")
    return ", ".join(parts)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None
