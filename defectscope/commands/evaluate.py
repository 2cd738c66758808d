"""``defectscope evaluate --model BUNDLE --data DATASET``: metrics, plots and an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from defectscope.commands._common import console, err_console, user_errors


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def print_metrics(metrics: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"{metrics['model']} on {metrics['n']} images ({metrics['split']}): accuracy "
                  f"{_pct(metrics['accuracy'])}, macro F1 {metrics['macro_f1']:.4f}", highlight=False)
    table = Table("class", "precision", "recall", "F1", "support")
    for c, v in metrics["per_class"].items():
        table.add_row(c, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", str(v["support"]))
    console.print(table)
    classes = metrics["classes"]
    cm = Table("true \\ predicted", *classes, title="confusion matrix")
    for c, row in zip(classes, metrics["confusion"], strict=True):
        cm.add_row(c, *(str(v) for v in row))
    console.print(cm)
    pf = metrics.get("pass_fail")
    if pf:
        review = "" if pf["review_threshold"] is None else f", review >= {pf['review_threshold']:.4g}"
        auc = "n/a" if pf["roc_auc"] is None else f"{pf['roc_auc']:.5f}"
        console.print(
            f"pass/fail at fail >= {pf['fail_threshold']:.4g}{review}: escape rate {_pct(pf['escape_rate'])} "
            f"({pf['escapes']}/{pf['defects']} defects passed), false-reject rate {_pct(pf['false_reject_rate'])} "
            f"({pf['false_rejects']}/{pf['good']} good failed), review {_pct(pf['review_rate'])}, ROC AUC {auc}",
            highlight=False)
        iv = pf.get("intervals")
        if iv:
            def ci(key: str) -> str:
                return f"{100 * iv[key]['low']:.1f}-{100 * iv[key]['high']:.1f}%"

            console.print(f"95% exact intervals: recall (fail + review) {ci('recall')}, automatic false rejects "
                          f"{ci('false_reject')}, review {ci('review')}", highlight=False)


@user_errors
def evaluate_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Model bundle folder."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (layout with manifest.csv)."),
    split: str = typer.Option("test", help="train, val, test or all."),
    fold: int = typer.Option(None, "--fold", min=0, help="Score this cross-validation fold (the images "
                             "'train --fold' held out) instead of a split."),
    out: Path = typer.Option(None, "--out", "-o", help="Report folder (default reports/NAME-VERSION-SPLIT)."),
    backend: str = typer.Option("auto", help="auto, onnx, onnx-int8, openvino or torch, as the service would use."),
    threads: int = typer.Option(None, min=1, help="CPU threads for inference."),
) -> None:
    """Accuracy, per-class P/R/F1, confusion matrix, ROC AUC, escape and false-reject rates at the
    bundle's thresholds; writes metrics.json, predictions.csv, PNG plots and report.html."""
    from inspection.bundle import load_bundle
    from training.evaluate import evaluate

    bundle = load_bundle(model)
    if out is None:
        out = Path("reports") / f"{bundle.card.name}-{bundle.card.version}-{split if fold is None else f'fold{fold}'}"
    report = evaluate(bundle, data, split=split, fold=fold, out=out, backend=backend, threads=threads)
    for line in report.skipped[:20]:
        err_console.print(f"[yellow]skipped[/] {line}", highlight=False)
    print_metrics(report.metrics)
    console.print(f"report {report.html_path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
