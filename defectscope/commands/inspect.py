"""``defectscope inspect PATH... --model BUNDLE [--out REPORT_DIR]``: verdicts for files, folders, globs.

Without --out: one line per image (errors on stderr). With --out: a QA report folder
(verdicts.csv, verdicts.jsonl, report.html with thumbnails and heatmaps), a progress bar and a
summary; --resume continues an interrupted report.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, fail, user_errors

FAIL_ON = ("defect", "review", "error", "none")
COLOURS = {"pass": "green", "fail": "red", "review": "yellow", "invalid": "cyan", "error": "magenta"}


def _exit_code(counts: Counter[str], fail_on: list[str]) -> int:
    hit = (("defect" in fail_on or "review" in fail_on) and counts["fail"] > 0) or (
        "review" in fail_on and counts["review"] > 0) or (
        "error" in fail_on and counts["error"] + counts["invalid"] > 0)
    return 1 if hit else 0


def _print_line(res) -> None:
    v = res.verdict
    if v is None:
        err_console.print(f"[red]error[/]  {res.path}: {res.error}", highlight=False)
        return
    c = COLOURS[v.outcome.value]
    console.print(
        f"[{c}]{v.outcome.value:<6}[/] {v.source}  label={v.label} confidence={v.confidence:.3f} "
        f"defect_score={v.defect_score:.3f} model={v.model_name}@{v.model_version}"
        + (f"  reason: {v.reason}" if v.reason else ""),
        highlight=False,
    )


def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("inspecting"), BarColumn(), MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]:>6.1f} images/s"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), TextColumn("{task.fields[tally]}"), console=err_console,
    )


def _summary(summary, out: Path, seconds: float, n_new: int, resumed: int) -> None:
    c = summary.counts
    rate = f"{summary.fail_rate:.1%}" if summary.fail_rate is not None else "n/a"
    console.print(
        f"[bold]{summary.total} images[/]: [green]{c['pass']} pass[/], [red]{c['fail']} fail[/], "
        f"[yellow]{c['review']} review[/], [cyan]{c['invalid']} invalid[/] (retake), [magenta]{c['error']} error[/] · "
        f"fail rate {rate}", highlight=False)
    speed = n_new / seconds if seconds > 0 else 0.0
    console.print(f"{n_new} inspected in {seconds:.1f} s ({speed:.1f} images/s)"
                  + (f", {resumed} kept from the earlier run" if resumed else ""), highlight=False)
    ev = summary.evaluation
    if ev is not None:
        pct = lambda x: "n/a" if x is None else f"{x:.1%}"  # noqa: E731
        console.print(f"against labels ({ev.labelled}): accuracy {pct(ev.label_accuracy)}, defect recall "
                      f"{pct(ev.defect_recall)}, {len(ev.escapes)} escapes, {len(ev.false_rejects)} false rejects",
                      highlight=False)
    for path, reason in summary.errors[:10]:
        err_console.print(f"[red]error[/]  {path}: {reason}", highlight=False)
    if len(summary.errors) > 10:
        err_console.print(f"... and {len(summary.errors) - 10} more error rows in the report", highlight=False)
    console.print(f"report: {out / 'report.html'}  (verdicts.csv, verdicts.jsonl beside it)", highlight=False)


@user_errors
def inspect_cmd(
    paths: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) or glob patterns."),
    model: Path = typer.Option(..., "--model", "-m", help="Model bundle folder."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder: verdicts.csv, verdicts.jsonl, "
                                    "report.html. Without it, one line per image is printed."),
    labels: Path | None = typer.Option(None, help="Known labels: a folder of class subfolders (or a dataset "
                                       "folder) or a CSV with path,label; adds the evaluation view."),
    fail_on: list[str] = typer.Option(["error"], "--fail-on", help="Exit with 1 if any image is: defect (fail), "
                                      "review (fail or review), error (unreadable); repeatable; none: always 0."),
    resume: bool = typer.Option(False, "--resume", help="Continue the report in --out, skipping files already in it."),
    workers: int | None = typer.Option(None, min=1, max=64, help="Threads that read, decode and preprocess "
                                       "[default: planned, one per core and one more]."),
    batch_size: int = typer.Option(16, min=1, max=512, help="Images per inference batch."),
    heatmaps: bool = typer.Option(True, help="Grad-CAM heatmaps for fail and review verdicts in the report."),
    backend: str = typer.Option("auto", help="auto (the fastest export measured), onnx, onnx-int8, openvino, torch."),
    threads: int | None = typer.Option(None, min=1, help="Inference threads [default: planned: the cores' share "
                                       "of inference in the measured CPU per image, at least 1]."),
) -> None:
    """Inspect images and folders; with --out write a QA report. Broken files become error rows."""
    bad = sorted(set(fail_on) - set(FAIL_ON))
    if bad:
        fail(f"--fail-on {', '.join(bad)} is not known: use {', '.join(FAIL_ON)}")
    if labels is not None and out is None:
        fail("--labels needs --out: the evaluation view is part of the report")
    if resume and out is None:
        fail("--resume needs --out: it continues a report folder")
    from inspection.bundle import load_bundle
    from qa.batch import BatchRunner
    from qa.paths import collect_paths
    from qa.threads import batch_predictor

    files = collect_paths(paths)
    predictor, workers, layout = batch_predictor(load_bundle(model), files, backend=backend, batch_size=batch_size,
                                                 workers=workers, threads=threads)
    if layout is not None:
        err_console.print(f"[dim]threads: {layout.describe()}[/]", highlight=False)
    if out is None:
        counts: Counter[str] = Counter()
        for res in BatchRunner(predictor, workers=workers, thumbnails=False).run(files):
            counts[res.outcome] += 1
            _print_line(res)
        raise typer.Exit(_exit_code(counts, fail_on))
    _report(predictor, files, out, labels, fail_on, resume, workers, heatmaps)


def _report(predictor, files: list[Path], out: Path, labels: Path | None, fail_on: list[str],
            resume: bool, workers: int, heatmaps: bool) -> None:
    from qa.batch import BatchRunner
    from qa.report import ReportWriter, load_truth

    card = predictor.card
    truth = load_truth(labels) if labels is not None else None
    out_key = out.resolve()
    files = [f for f in files if out_key not in f.resolve().parents]  # never inspect the report's own images
    writer = ReportWriter(out, model=f"{card.name}@{card.version}", classes=card.classes,
                          pass_classes=card.pass_classes, resume=resume)
    explainer = None
    if heatmaps:
        from inspection.overlay import explainer_for

        explainer = explainer_for(predictor.bundle, threads=1)  # see Explainer: fewer threads, less spinning
    todo = writer.todo(files)
    if writer.resumed:
        err_console.print(f"resuming: {writer.resumed} files already in the report, {len(todo)} to go")
    tally: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        with _progress() as bar:
            task = bar.add_task("inspect", total=len(todo), rate=0.0, tally="")

            def advance(res) -> None:
                tally[res.outcome] += 1
                done = sum(tally.values())
                text = " ".join(f"[{COLOURS[k]}]{tally[k]} {k}[/]" for k in ("fail", "review", "invalid", "error")
                                if tally[k])
                bar.update(task, advance=1, rate=done / max(time.perf_counter() - started, 1e-9), tally=text)

            for res in BatchRunner(predictor, workers=workers, explainer=explainer).run(todo, progress=advance):
                writer.add(res)
    except KeyboardInterrupt:
        writer.close()
        err_console.print(f"stopped after {sum(tally.values())} images; run again with --resume to continue")
        raise
    seconds = time.perf_counter() - started
    summary = writer.finish(files, truth)
    _summary(summary, out, seconds, len(todo), writer.resumed)
    raise typer.Exit(_exit_code(Counter(summary.counts), fail_on))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)
