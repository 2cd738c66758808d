"""A process analysis as files: ``report.html`` (self-contained: plots inlined) and ``summary.json`` for an MES."""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any

from analysis import plots
from analysis.run import ProcessAnalysis
from inspection.atomic import write_text_atomic

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:12px}
.status{padding:.6em 1em;border-radius:6px;margin:1em 0}.ok{background:#e8f6ec}.weak,.inconclusive{background:#fff4e0}
.window{border:2px solid #27ae60;border-radius:6px;padding:.6em 1em;margin:1em 0}.note{color:#7a4b00}"""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _window(res: ProcessAnalysis) -> str:
    w = res.window
    if w is None:
        return ""
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{a:.4g} to {b:.4g}</td></tr>" for k, (a, b) in w.ranges.items())
    rows += "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in w.levels.items())
    observed = (f"{w.fails} of {w.parts} parts that ran inside it failed ({_pct(w.fails / w.parts)}, 95 % CI "
                f"{_pct(w.observed_interval[0])}-{_pct(w.observed_interval[1])})" if w.parts else
                "no part ran inside it with every driver in range at once")
    return (f'<div class="window"><h2>Suggested window</h2><table><tr><th>parameter</th><th>run within</th></tr>'
            f"{rows}</table><p>Predicted fail rate there: <b>{_pct(w.predicted)}</b> (fold models "
            f"{_pct(w.spread[0])}-{_pct(w.spread[1])}), against {_pct(w.current)} as the line ran. Observed: "
            f"{observed}.</p><p class=note>Inside the observed range only; the parameters not listed stay as they "
            "ran. A model of logged data shows association: confirm a change with a trial run.</p></div>")


def _drivers(res: ProcessAnalysis) -> str:
    rows = "".join(
        f"<tr><td>{escape(d.name)}</td><td>{escape(d.kind)}</td><td>{d.importance:.4f}</td>"
        f"<td>{d.low:.4f} to {d.high:.4f}</td><td>{'yes' if d.is_driver else ''}</td></tr>" for d in res.drivers)
    return ("<h2>Parameters ranked</h2><table><tr><th>parameter</th><th>kind</th><th>importance</th>"
            f"<th>95 % interval</th><th>driver</th></tr>{rows}</table>")


def _classes(res: ProcessAnalysis) -> str:
    if not res.classes:
        return ""
    rows = []
    for c in res.classes:
        top = ", ".join(d["name"] for d in c.get("drivers", [])) or escape(c.get("message", "none detected"))
        auc = "" if c.get("auc") is None else f"{c['auc']:.3f}"
        rows.append(f"<tr><td>{escape(c['label'])}</td><td>{c['fails']}</td><td>{auc}</td><td>{escape(top)}</td></tr>")
    return ("<h2>Per defect class</h2><table><tr><th>class</th><th>failed parts</th><th>CV ROC AUC</th>"
            f"<th>drivers</th></tr>{''.join(rows)}</table>")


def render(res: ProcessAnalysis) -> str:
    scope = ", ".join(f"{k}: {v}" for k, v in res.scope.items() if v not in (None, [], ""))
    m = res.model
    summary = [("parts with process parameters", str(res.parts)), ("failed", f"{res.fails} "
               f"({_pct(res.fails / res.parts) if res.parts else 'n/a'})"),
               ("verdicts without parameters", str(res.without_process))]
    if m:
        summary += [("model", m["kind"]), ("cross-validated ROC AUC", "n/a" if m["cv_auc"] is None else
                    f"{m['cv_auc']:.3f} ({m['folds']} folds of consecutive parts)"),
                    ("candidates", ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}"
                                             for k, v in m["candidates"].items()))]
    table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in summary)
    parts = [f"<h1>Which settings make defects</h1><p>{escape(scope)}</p>",
             f'<div class="status {res.status}"><b>{escape(res.status)}</b>: {escape(res.message)}</div>',
             f"<table>{table}</table>", _window(res)]
    if res.drivers:
        parts += [_img(plots.importance(res.drivers), "driver importance"), _drivers(res)]
    if res.curves:
        shade: dict[str, Any] = {}
        if res.window is not None:
            shade = {**res.window.ranges, **res.window.levels}
        parts.append("<h2>Effects</h2><p>Line: the model's fail rate with the parameter set to each value (the "
                     "others as they ran). Points: the fail rate observed in each tenth of the parts, with exact "
                     "95 % intervals. Grey: parts per value. Green: the suggested window.</p><div class=grid>" +
                     "".join(_img(plots.effect(c, shade.get(c["name"])), c["name"]) for c in res.curves) + "</div>")
    parts.append(_classes(res))
    if res.notes:
        parts.append("<h2>Notes on the data</h2><ul>" + "".join(f"<li class=note>{escape(n)}</li>"
                                                                  for n in res.notes) + "</ul>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Process analysis</title><style>{STYLE}</style>"
            f"</head><body>{''.join(parts)}<p class=note>{res.seconds:.1f} s</p></body></html>")


def write_report(res: ProcessAnalysis, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    html, summary = out / "report.html", out / "summary.json"
    write_text_atomic(summary, json.dumps(res.to_dict(), indent=1))
    write_text_atomic(html, render(res))
    return html, summary
