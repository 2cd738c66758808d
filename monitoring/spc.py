"""Statistical process control on a station's verdict stream: pure logic, no I/O, no clock.

Three alarms per station (and model version), each raised once per episode and cleared with
hysteresis:

``fail_rate``
    A p-chart of the fail rate over consecutive windows of ``window`` valid parts, with the
    upper control limit set from a baseline period for a stated false-alarm rate, plus a
    Bernoulli CUSUM (Reynolds & Stoumbos 1999) that accumulates evidence of a slow rise to
    ``cusum_shift`` x the baseline rate. Either one raises the alarm.
``invalid_rate``
    The same p-chart on the share of frames the image-quality gate refused (lamp, focus, framing).
``score_drift``
    The population stability index (PSI) of the defect scores of passing parts against the
    model's validation scores of good parts: the images change before the verdicts do.

Why the limits hold their promise: the baseline rate is estimated from a finite baseline, so
the window limit is taken from the beta-binomial *predictive* distribution of a window's fail
count given the baseline (Jeffreys prior), not from the plug-in binomial. Averaged over
baselines, a fault-free window exceeds it with probability ``alpha``. The CUSUM threshold
``h = ln(ARL0)`` is Lorden's bound: the in-control run length is at least ``ARL0`` parts.
``benchmarks/spc_detection.py`` measures both promises and the detection delay.

A raised alarm also says which process parameters moved with it (``monitoring.process_shift``),
when the station sends them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from inspection.errors import DefectscopeError
from monitoring.process_shift import ProcessShift, describe

FAIL, INVALID = "fail", "invalid"
PSI_FLOOR = 1e-4  # empty bins would make PSI infinite


class SpcError(DefectscopeError):
    """SPC settings that cannot work (a window larger than the baseline, a rate outside 0..1)."""


@dataclass(frozen=True)
class SpcConfig:
    baseline: int = 500  # valid parts whose fail rate sets the centre line
    window: int = 50  # parts per p-chart point
    false_alarms_per_10k: float = 1.0  # promised fault-free rate of fail-rate alarm episodes
    cusum_shift: float = 2.0  # the CUSUM is tuned to detect p0 -> shift * p0
    clear_windows: int = 3  # consecutive in-control windows that end an episode
    min_rate: float = 0.002  # floor on the baseline rate: a zero-fail baseline still gives limits
    drift_window: int = 500  # passing parts per score-drift check
    drift_raise: float = 0.25  # PSI above this raises (the usual "significant shift" level)
    drift_clear: float = 0.10  # PSI below this clears
    history: int = 120  # chart points kept for the page

    def __post_init__(self) -> None:
        if self.window < 5 or self.baseline < self.window:
            raise SpcError(f"SPC window {self.window} must be >= 5 and not larger than the baseline {self.baseline}")
        if self.false_alarms_per_10k <= 0:
            raise SpcError("false_alarms_per_10k must be positive")
        if self.cusum_shift <= 1:
            raise SpcError("cusum_shift must be above 1 (it is the rate multiple the CUSUM looks for)")
        if not 0 < self.min_rate < 0.5 or not 0 < self.drift_clear < self.drift_raise:
            raise SpcError("min_rate must lie in (0, 0.5) and 0 < drift_clear < drift_raise")

    @property
    def window_alpha(self) -> float:
        """False-alarm probability per window: half the budget goes to the p-chart."""
        return min(0.5, 0.5 * self.false_alarms_per_10k * self.window / 10_000)

    @property
    def cusum_h(self) -> float:
        """The other half to the CUSUM: in-control ARL >= 10,000 / (budget / 2) parts."""
        return math.log(10_000 / (0.5 * self.false_alarms_per_10k))


# -- limits ------------------------------------------------------------------------------------------
def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def upper_limit(successes: int, trials: int, n: int, alpha: float, min_rate: float = 0.0) -> int:
    """Smallest count c with P(X > c) <= alpha for the next ``n`` trials, X beta-binomial with the
    Jeffreys posterior Beta(successes + 1/2, trials - successes + 1/2) (mean floored at ``min_rate``)."""
    a = max(successes + 0.5, min_rate * (trials + 1))
    b = max(trials + 1.0 - a, 0.5)
    tail, base = 1.0, _log_beta(a, b)
    for c in range(n + 1):
        log_pmf = (math.lgamma(n + 1) - math.lgamma(c + 1) - math.lgamma(n - c + 1)
                   + _log_beta(c + a, n - c + b) - base)
        tail -= math.exp(log_pmf)
        if tail <= alpha:
            return c
    return n


@dataclass(frozen=True)
class Limits:
    """Control limits of one p-chart, learned from its baseline."""

    centre: float  # baseline rate
    ucl_count: int  # a window with more events than this signals
    clear_count: int  # a window at or below this counts towards clearing (hysteresis)
    window: int
    baseline_parts: int
    baseline_events: int

    @property
    def ucl(self) -> float:
        return self.ucl_count / self.window

    @classmethod
    def learn(cls, events: int, parts: int, cfg: SpcConfig) -> Limits:
        centre = max(cfg.min_rate, (events + 0.5) / (parts + 1))
        ucl = upper_limit(events, parts, cfg.window, cfg.window_alpha, cfg.min_rate)
        clear = min(ucl - 1, math.floor(cfg.window * centre + math.sqrt(cfg.window * centre * (1 - centre))))
        return cls(centre, ucl, max(0, clear), cfg.window, parts, events)


@dataclass(frozen=True)
class AlarmEvent:
    """An alarm episode starting (``raised``) or ending (``cleared``)."""

    kind: str  # fail_rate, invalid_rate, score_drift
    state: str  # raised, cleared
    ts: float
    part: int  # parts seen by this monitor when it happened
    value: float
    limit: float
    message: str
    moved: tuple[dict[str, Any], ...] = ()  # process parameters that moved with a raised alarm

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "state": self.state, "ts": self.ts, "part": self.part,
                "value": self.value, "limit": self.limit, "message": self.message, "moved": list(self.moved)}


@dataclass
class ChartPoint:
    part: int
    ts: float
    rate: float
    ucl: float
    alarm: bool


# -- one chart ---------------------------------------------------------------------------------------
@dataclass
class PChart:
    """A p-chart (plus optional CUSUM) over a 0/1 stream; baseline first, then windows."""

    kind: str
    what: str  # "fail rate", for messages
    cfg: SpcConfig
    cusum: bool = True
    limits: Limits | None = None
    active: bool = False
    parts: int = 0
    points: deque[ChartPoint] = field(default_factory=deque)
    _base_n: int = 0
    _base_x: int = 0
    _win_n: int = 0
    _win_x: int = 0
    _calm: int = 0
    _s: float = 0.0  # CUSUM statistic
    _up: float = 0.0  # CUSUM log-likelihood ratio increment of an event, and of a non-event
    _down: float = 0.0

    def observe(self, event: bool, ts: float) -> AlarmEvent | None:
        self.parts += 1
        if self.limits is None:
            self._base_n += 1
            self._base_x += event
            if self._base_n >= self.cfg.baseline:
                self._learn()
            return None
        signal = self._cusum(event) if self.cusum and not self.active else None
        self._win_n += 1
        self._win_x += event
        if self._win_n >= self.cfg.window:
            signal = self._close_window(ts) or signal
        if signal is not None and not self.active:
            self.active, self._calm, self._s = True, 0, 0.0
            value, limit, msg = signal
            if self.points:
                self.points[-1].alarm = True
            return AlarmEvent(self.kind, "raised", ts, self.parts, value, limit, msg)
        if self.active and self._calm >= self.cfg.clear_windows:
            self.active, self._s = False, 0.0
            lim = self.limits
            return AlarmEvent(self.kind, "cleared", ts, self.parts, self.points[-1].rate, lim.clear_count / lim.window,
                              f"{self.what} back in control: {self.cfg.clear_windows} windows at or below "
                              f"{lim.clear_count}/{lim.window}")
        return None

    def _learn(self) -> None:
        self.limits = lim = Limits.learn(self._base_x, self._base_n, self.cfg)
        # the CUSUM's in-control rate: one posterior sd above the estimate, so that a short baseline
        # that happened to see few fails does not make every later part look like evidence of a rise
        n = lim.baseline_parts + 1
        p0 = min(0.9, lim.centre + math.sqrt(lim.centre * (1 - lim.centre) / (n + 1)))
        p1 = min(0.95, self.cfg.cusum_shift * p0)
        self._up, self._down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))

    def _cusum(self, event: bool) -> tuple[float, float, str] | None:
        self._s = max(0.0, self._s + (self._up if event else self._down))
        h = self.cfg.cusum_h
        if self._s <= h:
            return None
        assert self.limits is not None  # only called after the baseline
        return (self._s, h, f"{self.what} drifting up: CUSUM {self._s:.1f} > {h:.1f} "
                f"(evidence for {self.cfg.cusum_shift:g}x the baseline {self.limits.centre:.2%})")

    def _close_window(self, ts: float) -> tuple[float, float, str] | None:
        lim = self.limits
        assert lim is not None
        x, n = self._win_x, self._win_n
        self._win_n = self._win_x = 0
        out = x > lim.ucl_count
        self.points.append(ChartPoint(self.parts, ts, x / n, lim.ucl, out))
        while len(self.points) > self.cfg.history:
            self.points.popleft()
        self._calm = self._calm + 1 if x <= lim.clear_count else 0
        if not out:
            return None
        return (x / n, lim.ucl, f"{self.what} {x}/{n} = {x / n:.1%} above the control limit {lim.ucl:.1%} "
                f"(baseline {lim.centre:.2%} over {lim.baseline_parts} parts)")

    def snapshot(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "kind": self.kind, "active": self.active, "parts": self.parts,
            "baseline": {"parts": self._base_n, "needed": self.cfg.baseline, "done": lim is not None},
            "centre": lim.centre if lim else None, "ucl": lim.ucl if lim else None,
            "clear": lim.clear_count / lim.window if lim else None, "window": self.cfg.window,
            "cusum": round(self._s, 3) if lim else None, "cusum_h": round(self.cfg.cusum_h, 3) if self.cusum else None,
            "current": {"parts": self._win_n, "events": self._win_x},
            "points": [{"part": p.part, "ts": p.ts, "rate": p.rate, "ucl": p.ucl, "alarm": p.alarm}
                       for p in self.points],
        }


# -- score drift -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreReference:
    """Bin edges of the validation defect scores of good images (quantiles), below ``below``."""

    edges: tuple[float, ...]  # interior edges, increasing; len + 1 bins of equal reference mass
    n: int
    below: float  # only scores under this (the fail threshold) are compared

    @classmethod
    def from_scores(cls, scores: Iterable[float], below: float, bins: int | None = None) -> ScoreReference | None:
        """None when too few scores (under 40) to say anything."""
        vals = sorted(float(s) for s in scores if s < below)
        if len(vals) < 40:
            return None
        k = bins or max(4, min(10, len(vals) // 25))  # at least ~25 reference scores per bin
        edges = sorted({vals[min(len(vals) - 1, round(len(vals) * i / k))] for i in range(1, k)})
        return cls(tuple(edges), len(vals), below)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ScoreReference | None:
        if not raw or not raw.get("edges"):
            return None
        return cls(tuple(float(e) for e in raw["edges"]), int(raw["n"]), float(raw["below"]))

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "n": self.n, "below": self.below}

    def psi(self, scores: Iterable[float]) -> float:
        counts = [0] * (len(self.edges) + 1)
        total = 0
        for s in scores:
            lo, hi = 0, len(self.edges)
            while lo < hi:  # bisect: the first edge above s
                mid = (lo + hi) // 2
                if self.edges[mid] <= s:
                    lo = mid + 1
                else:
                    hi = mid
            counts[lo] += 1
            total += 1
        q = 1.0 / len(counts)
        return sum((max(c / total, PSI_FLOOR) - q) * math.log(max(c / total, PSI_FLOOR) / q) for c in counts)


@dataclass
class ScoreDrift:
    ref: ScoreReference
    cfg: SpcConfig
    active: bool = False
    last_psi: float | None = None
    _buf: list[float] = field(default_factory=list)

    def observe(self, score: float, ts: float, part: int) -> AlarmEvent | None:
        if score >= self.ref.below:
            return None
        self._buf.append(score)
        if len(self._buf) < self.cfg.drift_window:
            return None
        psi = self.last_psi = self.ref.psi(self._buf)
        self._buf = []
        if not self.active and psi > self.cfg.drift_raise:
            self.active = True
            return AlarmEvent("score_drift", "raised", ts, part, psi, self.cfg.drift_raise,
                              f"defect scores of passing parts drifted from validation: PSI {psi:.2f} > "
                              f"{self.cfg.drift_raise:g} (lighting, lens, material?)")
        if self.active and psi < self.cfg.drift_clear:
            self.active = False
            return AlarmEvent("score_drift", "cleared", ts, part, psi, self.cfg.drift_clear,
                              f"defect scores back near validation: PSI {psi:.2f} < {self.cfg.drift_clear:g}")
        return None


# -- a station ---------------------------------------------------------------------------------------
class StationMonitor:
    """Feed every verdict of one station (and model version); returns alarm events as they happen."""

    def __init__(self, cfg: SpcConfig | None = None, *, reference: ScoreReference | None = None) -> None:
        self.cfg = cfg or SpcConfig()
        self.fail = PChart("fail_rate", "fail rate", self.cfg)
        self.invalid = PChart("invalid_rate", "invalid-frame rate", self.cfg, cusum=False)
        self.drift = ScoreDrift(reference, self.cfg) if reference is not None else None
        self.process = ProcessShift(self.cfg.baseline, max(self.cfg.window, 20))  # the window that alarmed
        self.counts: dict[str, int] = {}

    def observe(self, outcome: str, defect_score: float | None, ts: float,
                process: Mapping[str, Any] | None = None) -> list[AlarmEvent]:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.process.observe(process)
        return [self._with_moved(e) for e in self._charts(outcome, defect_score, ts)]

    def _with_moved(self, ev: AlarmEvent) -> AlarmEvent:
        moved = self.process.moved() if ev.state == "raised" else []
        if not moved:
            return ev
        return replace(ev, moved=tuple(moved), message=f"{ev.message}; moved with it: {describe(moved)}")

    def _charts(self, outcome: str, defect_score: float | None, ts: float) -> list[AlarmEvent]:
        events = [self.invalid.observe(outcome == INVALID, ts)]
        if outcome != INVALID:
            events.append(self.fail.observe(outcome == FAIL, ts))
            if self.drift is not None and defect_score is not None and outcome != FAIL:
                events.append(self.drift.observe(defect_score, ts, self.invalid.parts))
        return [e for e in events if e is not None]

    @property
    def active(self) -> list[str]:
        kinds = [c.kind for c in (self.fail, self.invalid) if c.active]
        return kinds + (["score_drift"] if self.drift is not None and self.drift.active else [])

    def snapshot(self) -> dict[str, Any]:
        d = self.drift
        return {
            "parts": self.invalid.parts, "counts": dict(self.counts), "active": self.active,
            "fail_rate": self.fail.snapshot(), "invalid_rate": self.invalid.snapshot(),
            "score_drift": None if d is None else {
                "active": d.active, "psi": d.last_psi, "raise": self.cfg.drift_raise, "clear": self.cfg.drift_clear,
                "window": self.cfg.drift_window, "reference_n": d.ref.n},
        }
