"""report.html: summary tables rendered here (readable without JavaScript); the image table built
in the browser from one compact JSON blob (a column list and one array per row), a page at a time,
so thousands of rows open and sort fast. Images are the report folder's own files (thumbs/,
heatmaps/), by relative path and loaded lazily; a Content-Security-Policy lets the page load
nothing else: no network, and only its own script and style run."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from html import escape
from typing import Any

from qa.report.summary import OUTCOMES, Evaluation, Summary
from qa.report.template import SCRIPT, STYLE

GALLERY_MAX = 200  # escapes / false rejects shown with thumbnails; the table has them all
GALLERY_OPEN = 24  # longer galleries start folded
TABLE_KEYS = ("path", "verdict", "label", "defect_score", "confidence", "truth", "thumbnail_file", "heatmap_file",
              "heatmap_target", "error", "regions", "width", "height")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _table(title: str, data: dict[str, dict[str, int]], cols: Sequence[str], first: str) -> str:
    if not data:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in (first, *cols, "total"))
    body = "".join(
        f"<tr><td>{escape(k)}</td>" + "".join(f'<td class="n">{v.get(c, 0)}</td>' for c in cols)
        + f'<td class="n">{sum(v.values())}</td></tr>'
        for k, v in data.items()
    )
    return f"<div><h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table></div>"


def _gallery(title: str, paths: list[str], rows: dict[str, dict[str, Any]]) -> str:
    figs = []
    for p in paths[:GALLERY_MAX]:
        r = rows[p]
        src = r.get("heatmap_file") or r.get("thumbnail_file")
        size = f' width="{r["width"]}" height="{r["height"]}"' if r.get("width") and r.get("height") else ""
        pic = f'<img src="{escape(src)}" loading="lazy" alt=""{size}>' if src else ""
        figs.append(f"<figure>{pic}<figcaption>{escape(p)}<br>truth {escape(str(r.get('truth')))}, "
                    f"verdict {escape(r['verdict'])} ({escape(str(r.get('label')))})</figcaption></figure>")
    more = f'<p class="muted">first {GALLERY_MAX} of {len(paths)} shown</p>' if len(paths) > GALLERY_MAX else ""
    if not paths:
        return f'<h2>{escape(title)} (0)</h2><p class="muted">none</p>'
    opened = " open" if len(paths) <= GALLERY_OPEN else ""  # a long list stays one click away
    return (f"<details{opened}><summary><h2>{escape(title)} ({len(paths)})</h2></summary>"
            f'<div class="gallery">{"".join(figs)}</div>{more}</details>')


def _evaluation(ev: Evaluation, rows: dict[str, dict[str, Any]]) -> str:
    truths = sorted(ev.confusion)
    preds = sorted({p for row in ev.confusion.values() for p in row} | set(truths))
    head = "".join(f"<th>{escape(p)}</th>" for p in preds)
    body = "".join(
        f"<tr><th>{escape(t)}</th>" + "".join(
            f'<td class="n{" diag" if t == p else ""}">{ev.confusion[t].get(p, 0) or ""}</td>' for p in preds
        ) + "</tr>" for t in truths
    )
    stats = (f"<p>{ev.labelled} labelled images · label accuracy {_pct(ev.label_accuracy)} · defect recall "
             f"(fail or review) {_pct(ev.defect_recall)} · false reject rate {_pct(ev.false_reject_rate)} · "
             f"{ev.reviewed} sent to review</p>")
    return (f'<section id="evaluation"><h2>Evaluation against known labels</h2>{stats}'
            f"<table><tr><th>truth \\ predicted</th>{head}</tr>{body}</table>"
            f"{_gallery('Escapes: defective parts passed', ev.escapes, rows)}"
            f"{_gallery('False rejects: good parts failed', ev.false_rejects, rows)}</section>")


def _json_for_script(data: Any) -> str:
    # "</script" or "<!--" in a file name would end or confuse the <script> element: escape every "<"
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _table_row(r: dict[str, Any]) -> list[Any]:
    """One row of the image table, in TABLE_KEYS order, plus whether the label differs from truth."""
    out = []
    for k in TABLE_KEYS:
        v = r.get(k)
        if k in ("defect_score", "confidence") and v is not None:
            v = round(v, 4)  # shown with 3 decimals; 4 keeps sorting by them exact enough
        elif k == "regions":
            v = [{"label": g["label"], "box": g["box"], "peak": g["peak"]} for g in v or ()]
        out.append(v)
    truth = r.get("truth")
    out.append(bool(truth) and r["verdict"] != "error" and r["label"] != truth)
    return out


def _csp(*inline: str) -> str:
    """Only this page's own style and script (by hash) and images from its own folder ('self'; file: too,
    as browsers differ on what 'self' means for a page opened from a file or a share)."""
    style, script = (f"'sha256-{base64.b64encode(hashlib.sha256(t.encode()).digest()).decode()}'" for t in inline)
    return f"default-src 'none'; img-src 'self' file:; style-src {style}; script-src {script}"


def render_html(rows: Sequence[dict[str, Any]], s: Summary, *, title: str) -> str:
    by_path = {r["path"]: r for r in rows}
    cards = "".join(f'<div class="card {k}"><b>{s.counts[k]}</b>{k}</div>' for k in OUTCOMES)
    cards += f'<div class="card"><b>{_pct(s.fail_rate)}</b>fail rate</div>'
    errors = "".join(f'<tr><td class="path">{escape(p)}</td><td>{escape(e)}</td></tr>' for p, e in s.errors)
    has_truth = s.evaluation is not None
    data = {"cols": [*TABLE_KEYS, "wrong"], "rows": [_table_row(r) for r in rows], "has_truth": has_truth}
    filters = ["all", *OUTCOMES] + (["wrong"] if has_truth else [])
    options = "".join(f'<option value="{f}">{"label differs from truth" if f == "wrong" else f}</option>'
                      for f in filters)
    truth_th = '<th data-key="truth">truth</th>' if has_truth else ""
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_csp(STYLE, SCRIPT)}">
<title>{escape(title)}</title><style>{STYLE}</style></head><body>
<header><h1>{escape(title)}</h1><p>{s.total} images under {escape(s.root) or "(several roots)"} · model
{escape(", ".join(s.models) or "n/a")} · generated {generated}</p></header><main>
<section id="summary"><h2>Summary</h2><div class="cards">{cards}</div></section>
<section class="grid">{_table("By predicted class", s.by_label, OUTCOMES[:3], "label")}
{_table("By subfolder", s.by_folder, OUTCOMES, "folder")}</section>
{_evaluation(s.evaluation, by_path) if s.evaluation else ""}
{f'<section id="errors"><h2 class="error">Files that could not be inspected ({len(s.errors)})</h2><table>'
 f'<tr><th>file</th><th>reason</th></tr>{errors}</table></section>' if s.errors else ""}
<section><h2>All images</h2><div class="controls"><label>show <select id="f">{options}</select></label>
<input id="q" type="search" placeholder="filter by path, label, error"><span class="pager"><button id="prev">◀</button>
<button id="next">▶</button></span><span id="pageinfo" class="muted"></span></div>
<table id="rows"><thead><tr><th>image</th><th data-key="path">path</th><th data-key="verdict">verdict</th>
<th data-key="label">label</th><th data-key="defect_score">defect score</th><th data-key="confidence">confidence</th>
{truth_th}<th>heatmap</th><th>defect regions (frame pixels)</th><th data-key="error">error</th></tr></thead>
<tbody id="body"></tbody></table></section>
</main><div id="zoom"><img id="zoomimg" alt="enlarged"></div>
<script type="application/json" id="data">{_json_for_script(data)}</script>
<script>{SCRIPT}</script></body></html>
"""
