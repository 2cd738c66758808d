"""``defectscope retrain --registry R --data D --samples S --golden G --out RUN``: a challenger vs the champion."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, user_errors


@user_errors
def retrain_cmd(
    registry: Path = typer.Option(..., "--registry", "-r", envvar="DEFECTSCOPE_REGISTRY", help="Model registry."),
    data: Path = typer.Option(..., "--data", "-d", help="The dataset the champion was trained on."),
    golden: Path = typer.Option(..., "--golden", "-g", help="Dataset holding the frozen golden set."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (merged data, training run, report)."),
    samples: Path | None = typer.Option(None, "--samples", "-s", help="Sample folder with the new labelled images."),
    line: str = typer.Option("default", help="Line or product whose champion is challenged."),
    golden_split: str = typer.Option("test", help="Split of --golden used as golden set, or 'all'."),
    epochs: int | None = typer.Option(None, min=1, help="Fine-tuning epochs [default: 12]."),
    lr: float | None = typer.Option(None, help="Learning rate [default: 5e-4]."),
    batch_size: int | None = typer.Option(None, min=2, help="Batch size."),
    target_recall: float | None = typer.Option(None, help="Defect recall the fail threshold is calibrated to."),
    threads: int | None = typer.Option(None, min=1, help="Torch threads [default: all cores]."),
    max_recall_drop: float = typer.Option(0.0, help="Golden defect recall may drop at most this much (0: not lower)."),
    max_false_reject_increase: float = typer.Option(0.02, help="Golden false-reject rate may rise at most this much."),
    min_new_class_recall: float = typer.Option(0.9, help="Share of a new defect class's golden images to catch."),
    no_promote: bool = typer.Option(False, "--no-promote", help="Keep a passing challenger as a candidate only."),
    accept_new_golden: bool = typer.Option(False, "--accept-new-golden", help="The golden set changed on purpose."),
) -> None:
    """Fine-tune a challenger from the champion, compare both on the golden set, promote or reject it.

    The challenger learns from the old data plus the new samples (new classes included) and is
    calibrated; it is registered as promoted or rejected with the reason. RUN/report.html shows
    both side by side. A running service picks a new champion up with POST /v1/model/reload (or
    its --watch)."""
    from training.promotion import PromotionRules
    from training.retrain import RetrainConfig, retrain

    overrides = {k: v for k, v in {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                                   "target_recall": target_recall}.items() if v is not None}
    cfg = RetrainConfig(
        registry=str(registry), data=str(data), golden=str(golden), out=str(out),
        samples=str(samples) if samples else None, line=line, golden_split=golden_split, train=overrides,
        rules=PromotionRules(max_recall_drop, max_false_reject_increase, min_new_class_recall),
        auto_promote=not no_promote, accept_new_golden=accept_new_golden, threads=threads)
    res = retrain(cfg, progress=err_console.is_terminal)
    colour = {"promoted": "green", "rejected": "red"}.get(res.status, "yellow")
    for who, m in (("champion", res.champion), ("challenger", res.challenger)):
        console.print(f"{who:<10} {m['version']}  defect recall {m['defect_recall']:.2%}  escape "
                      f"{m['escape_rate']:.2%}  false-reject {m['false_reject_rate']:.2%}", highlight=False)
    console.print(f"[{colour}]{res.status}[/]: {res.decision.reason}", highlight=False)
    console.print(f"report: {res.report_html}", highlight=False)
    if res.status == "rejected":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain_cmd)
