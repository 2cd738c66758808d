"""Promotion rules: a challenger replaces the champion only if it is no worse on the golden set.

Figures come from ``training.golden.score_on_golden``. Defaults follow the GUIDE: escapes are the
costly error, so overall defect recall may not drop at all; the false-reject rate may rise a
little (scrap is cheaper than an escape); every defect class the champion did not know must be
caught at least ``min_new_class_recall`` of the time, or the retraining missed its purpose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from inspection.errors import DefectscopeError


class PromotionRulesError(DefectscopeError):
    """A promotion rule is out of range."""


@dataclass(frozen=True)
class PromotionRules:
    max_recall_drop: float = 0.0  # defect recall may fall at most this much (0.0: not lower)
    max_false_reject_increase: float = 0.02  # 2 percentage points
    min_new_class_recall: float = 0.9
    max_class_recall_drop: float | None = None  # per known defect class; None: only the overall figure

    def __post_init__(self) -> None:
        for name in ("max_recall_drop", "max_false_reject_increase", "min_new_class_recall"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise PromotionRulesError(f"{name} must lie in [0, 1], not {getattr(self, name)}")
        if self.max_class_recall_drop is not None and not 0.0 <= self.max_class_recall_drop <= 1.0:
            raise PromotionRulesError("max_class_recall_drop must lie in [0, 1]")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    champion: float | None
    challenger: float | None
    limit: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        shown = failed or self.checks
        text = "; ".join(f"{c.name} {_pct(c.challenger)} vs champion {_pct(c.champion)} ({c.limit})" for c in shown)
        return ("no worse on the golden set: " if self.promote else "refused: ") + text

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason, "checks": [asdict(c) for c in self.checks]}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def decide(champion: dict[str, Any], challenger: dict[str, Any], rules: PromotionRules) -> Decision:
    if champion.get("golden_fingerprint") != challenger.get("golden_fingerprint"):
        raise PromotionRulesError("champion and challenger were scored on different golden sets")
    checks = []
    rc, rn = champion["defect_recall"], challenger["defect_recall"]
    checks.append(Check("defect recall", rn >= rc - rules.max_recall_drop - 1e-12, rc, rn,
                        f"may drop at most {_pct(rules.max_recall_drop)}"))
    fc, fn = champion["false_reject_rate"], challenger["false_reject_rate"]
    checks.append(Check("false-reject rate", fn <= fc + rules.max_false_reject_increase + 1e-12, fc, fn,
                        f"may rise at most {_pct(rules.max_false_reject_increase)}"))
    for cls, new in challenger["per_class"].items():
        old = champion["per_class"].get(cls)
        if old is not None and not old["known_to_model"] and new["known_to_model"]:
            checks.append(Check(f"recall of new class {cls}", new["recall"] >= rules.min_new_class_recall,
                                old["recall"], new["recall"], f"at least {_pct(rules.min_new_class_recall)}"))
        elif old is not None and rules.max_class_recall_drop is not None:
            checks.append(Check(f"recall of {cls}", new["recall"] >= old["recall"] - rules.max_class_recall_drop,
                                old["recall"], new["recall"], f"may drop at most {_pct(rules.max_class_recall_drop)}"))
    return Decision(all(c.passed for c in checks), tuple(checks))
