"""``defectscope calibrate --model BUNDLE [--data DATASET] [--reviewed STORE] --out NEW``: re-choose the
thresholds (pass / review / fail) without retraining, adding the line's reviewed verdicts."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import console, fail, user_errors


@user_errors
def calibrate_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Model bundle folder."),
    data: Path = typer.Option(None, "--data", "-d", help="Dataset folder with labelled images (default: the "
                              "scores the bundle was calibrated on, kept in its card)."),
    reviewed: Path = typer.Option(None, "--reviewed", help="Sample store with verdicts QA labelled (review page "
                                  "or POST /v1/verdicts/ID/label): added to the calibration scores."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the recalibrated bundle copy."),
    in_place: bool = typer.Option(False, "--in-place", help="Rewrite the bundle's card instead of copying."),
    split: str = typer.Option("val", help="Split of --data to calibrate on (never the test split you report)."),
    target_recall: float = typer.Option(0.995, help="Defect recall to reach (0.995 = at most 0.5% escapes); "
                                        "parts below it pass, fail and review count as caught."),
    review_false_reject: float = typer.Option(
        0.01, help="Review band: automatic fails may reject at most this share of good parts."),
    review_budget: float = typer.Option(None, help="Instead: at most this share of all parts goes to review."),
    no_review_band: bool = typer.Option(False, "--no-review-band", help="One threshold at the recall target."),
    no_defects_fallback: bool = typer.Option(
        False, "--no-defects-fallback", help="Without defects (or good parts) in the split, keep threshold 0.5."),
    backend: str = typer.Option("auto", help="auto, onnx, onnx-int8, openvino or torch."),
) -> None:
    """Choose the thresholds so defect recall meets the target and automatic false rejects the budget; report
    what it costs, with exact 95% intervals. Weights are untouched; only card.json changes."""
    from training.calibration import summary
    from training.recalibrate import recalibrate_bundle

    if (out is None) == (not in_place):
        fail("give either --out NEW_FOLDER or --in-place")
    budget = None if no_review_band or review_budget is not None else review_false_reject
    cal, card = recalibrate_bundle(model, data, out=model if in_place else out, split=split, reviewed=reviewed,
                                   target_recall=target_recall, review_false_reject=budget,
                                   review_budget=review_budget, fallback=no_defects_fallback, backend=backend)
    if not cal.calibrated:
        console.print(f"[yellow]not calibrated[/]: {cal.note}", highlight=False)
    else:
        console.print(summary(cal), highlight=False)
        console.print(cal.support, highlight=False)
        if cal.note:
            console.print(f"[yellow]note[/]: {cal.note}", highlight=False)
    console.print(f"bundle {model if in_place else out} ({card.name}@{card.version})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)
