"""The side-by-side report of a retraining: champion vs challenger on the golden set (HTML + JSON)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from inspection.atomic import write_text_atomic
from training import plots
from training.promotion import Decision
from training.report_html import STYLE


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _rows(champion: dict[str, Any], challenger: dict[str, Any]) -> str:
    def row(name: str, a: str, b: str) -> str:
        return f"<tr><td>{escape(name)}</td><td>{escape(a)}</td><td>{escape(b)}</td></tr>"

    out = [row("version", champion["version"], challenger["version"]),
           row("golden images", str(champion["n"]), str(challenger["n"])),
           row("defect recall", _pct(champion["defect_recall"]), _pct(challenger["defect_recall"])),
           row("escape rate (defects passed)", f"{_pct(champion['escape_rate'])} ({champion['escapes']})",
               f"{_pct(challenger['escape_rate'])} ({challenger['escapes']})"),
           row("false-reject rate (good failed)",
               f"{_pct(champion['false_reject_rate'])} ({champion['false_rejects']})",
               f"{_pct(challenger['false_reject_rate'])} ({challenger['false_rejects']})"),
           row("sent to review", _pct(champion["review_rate"]), _pct(challenger["review_rate"])),
           row("fail threshold", f"{champion['fail_threshold']:.4g}", f"{challenger['fail_threshold']:.4g}")]
    for cls, b in challenger["per_class"].items():
        a = champion["per_class"].get(cls, {})
        known = "" if a.get("known_to_model", True) else " (unknown to champion)"
        out.append(row(f"caught: {cls}{known}", f"{_pct(a.get('recall'))} of {a.get('n', 0)}",
                       f"{_pct(b['recall'])} of {b['n']}"))
    return "<table><tr><th></th><th>champion</th><th>challenger</th></tr>" + "".join(out) + "</table>"


def write_report(run: Path, champion: dict[str, Any], challenger: dict[str, Any], decision: Decision, status: str,
                 context: dict[str, Any]) -> Path:
    images = {}
    for who, m in (("champion", champion), ("challenger", challenger)):
        png = run / f"golden_scores_{who}.png"
        plots.score_histogram(np.asarray(m["scores"]), np.asarray(m["is_defect"], bool), m["fail_threshold"],
                              m["review_threshold"], png)
        images[who] = png.name
    strip = ("scores", "is_defect")
    report = {"status": status, "decision": decision.to_dict(), **context,
              "champion": {k: v for k, v in champion.items() if k not in strip},
              "challenger": {k: v for k, v in challenger.items() if k not in strip}}
    write_text_atomic(run / "report.json", json.dumps(report, indent=2, default=str))
    checks = "".join(f"<li>{'PASS' if c.passed else '<b>FAIL</b>'} {escape(c.name)}: {_pct(c.challenger)} vs "
                     f"{_pct(c.champion)} ({escape(c.limit)})</li>" for c in decision.checks)
    title = f"Retraining on line {context['line']}: challenger {challenger['version']} {status}"
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style>"
            f"</head><body><h1>{escape(title)}</h1><p>Golden set {escape(context['golden'])} "
            f"({escape(context['golden_split'])}, fingerprint {escape(champion['golden_fingerprint'])}).</p>"
            f"<h2>Decision</h2><p>{escape(decision.reason)}</p><ul>{checks}</ul>"
            f"<h2>Side by side</h2>{_rows(champion, challenger)}<h2>Defect scores on the golden set</h2>"
            + "".join(f'<p>{w}<br><img class="plot" src="{escape(src)}" alt="{w}"></p>' for w, src in images.items())
            + "<p>Files: report.json, train/ (the challenger's training run), data/ (the merged dataset)</p>"
            "</body></html>")
    path = run / "report.html"
    write_text_atomic(path, html)
    return path
