"""RUN/calibration/report.html: the thresholds a run chose, the operating curve of the scores they were
chosen on (the val split's, or the out-of-fold ones), and the hardest of those images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspection.atomic import write_text_atomic
from inspection.card import ModelCard
from training import plots
from training.calibration import LabelledScores
from training.operating import hardest_cases
from training.report_html import render_calibration


def write_calibration_report(where: Path, card: ModelCard, calibration: dict[str, Any], pool: LabelledScores,
                             items: Sequence[Any], paths: Sequence[str],
                             cards: Sequence[ModelCard] | ModelCard) -> Path:
    """``items``/``paths``: the scored images behind ``pool``, in its order; ``cards``: who scored each."""
    where.mkdir(parents=True, exist_ok=True)
    th = card.thresholds
    plots.operating_curve(pool.scores, pool.is_defect, th.fail, th.review, where / "operating.png")
    cases = hardest_cases(where, items, paths, pool.scores, pool.is_defect, cards)
    html = where / "report.html"
    write_text_atomic(html, render_calibration(card, calibration, {"operating curve": "operating.png"}, cases))
    return html
