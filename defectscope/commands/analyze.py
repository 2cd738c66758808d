"""``defectscope analyze``: which process settings make defects, from the verdict log."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import typer

from defectscope.commands._common import console, fail, user_errors

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str | None, what: str) -> float | None:
    """'24h' / '7d' (ago), an ISO date or time (UTC unless it says otherwise), or Unix seconds."""
    if text is None:
        return None
    text = text.strip()
    if m := _AGO.match(text):
        return time.time() - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--{what} {text!r}: give a duration ago (24h, 7d), an ISO time (2026-12-01T06:00) or Unix seconds")
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


@user_errors
def analyze_cmd(
    log: Path = typer.Option(Path("defectscope-verdicts.sqlite"), "--log", envvar="DEFECTSCOPE_VERDICT_DB",
                             help="The service's verdict log (SQLite)."),
    database_url: str | None = typer.Option(None, "--database-url", envvar="DEFECTSCOPE_DATABASE_URL",
                                            help="The shared PostgreSQL log instead (postgresql://...).",
                                            show_default=False),
    since: str | None = typer.Option(None, help="From: 24h, 7d, an ISO time, or Unix seconds."),
    until: str | None = typer.Option(None, help="Until (exclusive), same forms."),
    station: list[str] = typer.Option([], "--station", help="Only these stations (repeat the option)."),
    model_version: str | None = typer.Option(None, help="Only verdicts of this model version."),
    out: Path = typer.Option(Path("analysis-report"), "--out", help="Folder for report.html and summary.json."),
    count_review: bool = typer.Option(False, help="Count parts sent to review as failed."),
    network: bool = typer.Option(True, help="Also try a small neural network (kept if it beats boosting)."),
    folds: int = typer.Option(5, min=2, max=10, help="Cross-validation folds (blocks of consecutive parts)."),
    limit: int = typer.Option(200_000, min=1, help="At most this many of the newest verdicts in the range."),
) -> None:
    """Fit P(fail | process parameters), rank the drivers, suggest the settings window; write the report."""
    from analysis import PartRecord, analyze
    from analysis.report import write_report
    from serving.sql import POSTGRES_URL, database
    from serving.verdict_store import VerdictQueries

    if database_url:
        if not POSTGRES_URL.match(database_url):
            fail("--database-url takes a postgresql://USER:PASS@HOST:PORT/DB URL")
        db = database(database_url)
    elif not log.is_file():
        fail(f"no verdict log at {log}: point --log at the service's verdict database")
    else:
        db = database(log)
    t0, t1 = parse_when(since, "since"), parse_when(until, "until")
    try:
        rows = VerdictQueries(db).for_analysis(since=t0, until=t1, stations=station, model_version=model_version,
                                                limit=limit)
    except db.errors as exc:  # a server that is down or refuses the login: one clear line
        fail(f"cannot read the verdict log at {db.where()}: {exc}")
    records = [PartRecord.from_row(r) for r in rows]
    scope = {"log": db.where(), "since": since, "until": until, "stations": station, "model_version": model_version}
    res = analyze(records, folds=folds, count_review=count_review, network=network, scope=scope)
    html, summary = write_report(res, out)
    style = {"ok": "green", "weak": "yellow", "inconclusive": "yellow"}[res.status]
    console.print(f"[{style}]{res.status}[/]: {res.message}", highlight=False)
    if res.model:
        console.print(f"{res.parts} parts, {res.fails} failed; {res.model['kind']}, cross-validated ROC AUC "
                      f"{res.model['cv_auc']}", highlight=False)
    for d in res.top_drivers:
        console.print(f"  driver {d.name}: importance {d.importance:.4f} [{d.low:.4f}, {d.high:.4f}]", highlight=False)
    if res.window is not None:
        w = res.window
        ranges = ", ".join([f"{k} {a:.4g}-{b:.4g}" for k, (a, b) in w.ranges.items()] +
                           [f"{k} = {v}" for k, v in w.levels.items()])
        console.print(f"  window: {ranges}: predicted fail rate {100 * w.predicted:.1f} % "
                      f"(now {100 * w.current:.1f} %; {w.fails} of {w.parts} parts inside failed)", highlight=False)
    for n in res.notes:
        console.print(f"  note: {n}", highlight=False)
    console.print(f"report: {html}\nsummary: {summary}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_cmd)
