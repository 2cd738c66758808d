"""Self-contained HTML pages: an evaluation (summary, per-class table, plots, the operating curve, the
hardest cases and mistakes as thumbnails) and a calibration (the thresholds with their intervals)."""

from __future__ import annotations

from html import escape
from typing import Any

from inspection.card import ModelCard

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:10px}.card{width:150px;font-size:12px}.card img{width:150px}
.card{overflow-wrap:anywhere}.escape{color:#b00;font-weight:bold}img.plot{max-width:640px;margin-right:1em}.note{color:#7a4b00}"""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _ci(pf: dict[str, Any], key: str, flip: bool = False) -> str:
    """'; 95% CI a-b%' of a pass/fail rate (``flip``: the escape rate from recall's interval)."""
    r = (pf.get("intervals") or {}).get(key)
    if not r or r["rate"] is None:
        return ""
    lo, hi = (1 - r["high"], 1 - r["low"]) if flip else (r["low"], r["high"])
    return f"; 95% CI {100 * lo:.1f}-{100 * hi:.1f}%"


def _summary(metrics: dict[str, Any]) -> str:
    rows = [("images", str(metrics["n"])), ("accuracy", _pct(metrics["accuracy"])),
            ("macro F1", f"{metrics['macro_f1']:.4f}")]
    pf = metrics.get("pass_fail")
    if pf:
        rows += [("fail threshold", f"{pf['fail_threshold']:.4g}"),
                 ("review threshold", "none" if pf["review_threshold"] is None else f"{pf['review_threshold']:.4g}"),
                 ("ROC AUC (defect score)", "n/a" if pf["roc_auc"] is None else f"{pf['roc_auc']:.5f}"),
                 ("escape rate (defects passed)", f"{_pct(pf['escape_rate'])} ({pf['escapes']} of {pf['defects']})"
                  + _ci(pf, "recall", flip=True)),
                 ("false-reject rate (good failed)",
                  f"{_pct(pf['false_reject_rate'])} ({pf['false_rejects']} of {pf['good']})" + _ci(pf, "false_reject")),
                 ("sent to review", _pct(pf["review_rate"]) + _ci(pf, "review"))]
    if metrics.get("skipped"):
        rows.append(("unreadable images skipped", str(metrics["skipped"])))
    return "<table>" + "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows) + "</table>"


def _per_class(metrics: dict[str, Any]) -> str:
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    body = "".join(
        f"<tr><td>{escape(c)}</td><td>{v['precision']:.4f}</td><td>{v['recall']:.4f}</td>"
        f"<td>{v['f1']:.4f}</td><td>{v['support']}</td></tr>" for c, v in metrics["per_class"].items())
    return f"<table>{head}{body}</table>"


def _mistakes(mistakes: list[dict[str, Any]], total: int) -> str:
    if not mistakes:
        return "<p>No misclassified images.</p>"
    cards = "".join(
        f'<div class="card"><img src="{escape(m["thumb"])}" alt=""><br>{escape(m["path"])}<br>'
        f'true <b>{escape(m["label"])}</b>, predicted <b>{escape(m["predicted"])}</b> ({m["confidence"]:.3f})<br>'
        f'defect score {m["defect_score"]:.3f}' + (' <span class="escape">ESCAPE</span>' if m["escape"] else "")
        + "</div>" for m in mistakes)
    more = f"<p>Showing {len(mistakes)} of {total}; all rows are in predictions.csv.</p>"
    more = more if total > len(mistakes) else ""
    return f'{more}<div class="grid">{cards}</div>'


def render_report(card: ModelCard, metrics: dict[str, Any], images: dict[str, str], mistakes: list[dict[str, Any]],
                  data_root: str, total_wrong: int, cases: dict[str, list[dict[str, Any]]] | None = None) -> str:
    title = f"{card.name}@{card.version} on {data_root} ({metrics['split']})"
    plots = "".join(f'<img class="plot" src="{escape(src)}" alt="{escape(name)}">' for name, src in images.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>{escape(card.arch)}, input {card.preprocess.input_size[1]}x{card.preprocess.input_size[0]} (WxH) "
            f"{escape(card.preprocess.color)}, classes {escape(', '.join(card.classes))}; pass classes "
            f"{escape(', '.join(card.pass_classes) or 'none')}</p>"
            f"<h2>Summary</h2>{_summary(metrics)}<h2>Per class</h2>{_per_class(metrics)}"
            f"<h2>Plots</h2><div>{plots}</div>"
            + (f"<h2>Hardest cases</h2>{hardest_html(cases)}" if cases else "")
            + f"<h2>Misclassified ({total_wrong})</h2>{_mistakes(mistakes, total_wrong)}"
            "<p>Files: metrics.json, predictions.csv</p></body></html>")


def _interval(r: dict[str, Any]) -> str:
    if r["rate"] is None:
        return "n/a"
    return f"{100 * r['rate']:.2f}% ({r['k']} of {r['n']}; 95% CI {100 * r['low']:.1f}-{100 * r['high']:.1f}%)"


def operating_points(bounds: dict[str, Any], support: str = "", note: str = "") -> str:
    """The chosen thresholds' three rates with their exact intervals, and what the data can support."""
    rows = [("defect recall (fail + review)", bounds["recall"]), ("automatic false rejects (good failed)",
                                                                  bounds["false_reject"]),
            ("sent to review (all parts)", bounds["review"])]
    table = "<table>" + "".join(f"<tr><td>{escape(k)}</td><td>{escape(_interval(v))}</td></tr>" for k, v in rows)
    table += "</table>"
    return (table + (f"<p>{escape(support)}.</p>" if support else "")
            + (f'<p class="note">{escape(note)}</p>' if note else ""))


def hardest_html(cases: dict[str, list[dict[str, Any]]]) -> str:
    def grid(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "<p>none</p>"
        return '<div class="grid">' + "".join(
            f'<div class="card"><img src="{escape(r["thumb"])}" alt=""><br>{escape(r["path"])}<br>'
            f'defect score {r["defect_score"]:.4g}</div>' for r in rows) + "</div>"

    return ("<h3>Lowest-scoring defects (the first to escape)</h3>" + grid(cases.get("defects", []))
            + "<h3>Highest-scoring good parts (the first to be failed)</h3>" + grid(cases.get("good", [])))


def render_calibration(card: ModelCard, cal: dict[str, Any], images: dict[str, str],
                       cases: dict[str, list[dict[str, Any]]]) -> str:
    th = cal["thresholds"]
    title = f"{card.name}@{card.version}: thresholds from {cal['source']}"
    plots = "".join(f'<img class="plot" src="{escape(src)}" alt="{escape(name)}">' for name, src in images.items())
    band = "none" if th.get("review") is None else f"{th['review']:.4g}"
    aim = ("for a false-reject budget: no defects to aim recall at" if cal["mode"] == "good-only"
           else f"target recall {100 * cal['target_recall']:g}%")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>fail at or above {th['fail']:.4g}, review from {escape(band)} ({escape(cal['mode'])}; {aim}), "
            f"on {cal['defects']} defective and {cal['good']} good images.</p>"
            f"{operating_points(cal['bounds'], cal.get('support', ''), cal.get('note', ''))}"
            f"<h2>Operating curve</h2><div>{plots}</div><h2>Hardest cases</h2>{hardest_html(cases)}</body></html>")
