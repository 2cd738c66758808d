"""One report row per file, as a plain dict, and the final CSV / JSONL renderings of the rows.

A row carries the verdict fields the user reads (path, verdict, label, scores, model version,
sha256, error) and the relative paths of its thumbnail and heatmap files (qa/report/assets.py),
so a resumed report is rebuilt from the journal without decoding anything again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from qa.batch import ItemResult

ASSET_KEYS = ("thumbnail", "heatmap")  # base64 images: in journals written before the images became files
FIELDS = ("path", "verdict", "label", "confidence", "defect_score", "model_name", "model_version",
          "sha256", "width", "height", "error", "heatmap_target", "heatmap_peak", "heatmap_file", "regions")


def row_from_result(res: ItemResult) -> dict[str, Any]:
    v = res.verdict
    row: dict[str, Any] = {
        "path": res.path, "verdict": res.outcome,
        "label": v.label if v else None,
        "confidence": round(v.confidence, 6) if v else None,
        "defect_score": round(v.defect_score, 6) if v else None,
        "scores": {k: round(s, 6) for k, s in v.scores.items()} if v else {},
        "model_name": v.model_name if v else None,
        "model_version": v.model_version if v else None,
        "sha256": res.sha256,
        "width": res.size[1] if res.size else None,
        "height": res.size[0] if res.size else None,
        "error": res.error or (v.reason if v else None),  # an invalid frame's reason: what to fix, then retake
        "heatmap_target": res.heatmap_target,
        "heatmap_peak": list(res.heatmap_peak) if res.heatmap_peak else None,
        "timings_ms": {k: round(ms, 3) for k, ms in v.timings_ms.items()} if v else {},  # inspection.timing names
        "regions": [r.to_dict() for r in v.regions] if v else [],  # a defect-map model's: where, in frame pixels
        "thumbnail_file": None,  # set by the writer once the file is written
        "heatmap_file": None,
    }
    return row


def public(row: dict[str, Any]) -> dict[str, Any]:
    """The row without embedded images (an old journal's): what verdicts.jsonl holds."""
    return {k: v for k, v in row.items() if k not in ASSET_KEYS}


def to_jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(public(r), ensure_ascii=False) + "\n" for r in rows)


def regions_text(regions: Sequence[dict[str, Any]] | None) -> str | None:
    """``label x,y,w,h peak`` per region (frame pixels), ``; ``-separated: one spreadsheet cell."""
    if not regions:
        return None
    return "; ".join(f"{r['label']} {','.join(map(str, r['box']))} {r['peak']:.3f}" for r in regions)


def to_csv(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> str:
    """One column per class score (``score_<class>``), and ``truth`` when labels were given."""
    has_truth = any("truth" in r for r in rows)
    header = [*FIELDS[:5], *(f"score_{c}" for c in classes), *FIELDS[5:], *(["truth"] if has_truth else [])]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        scores = r.get("scores") or {}
        peak = r.get("heatmap_peak")
        line = [r.get(k) for k in FIELDS[:5]] + [scores.get(c) for c in classes] + [
            (" ".join(map(str, peak)) if peak else None) if k == "heatmap_peak"
            else regions_text(r.get("regions")) if k == "regions" else r.get(k) for k in FIELDS[5:]
        ]
        if has_truth:
            line.append(r.get("truth"))
        w.writerow(["" if x is None else x for x in line])
    return buf.getvalue()
