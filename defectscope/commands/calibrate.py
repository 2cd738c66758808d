"""``defectscope calibrate --model BUNDLE --data DATASET --out NEW``: re-choose thresholds for a recall target."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import console, fail, user_errors


@user_errors
def calibrate_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Model bundle folder."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder with labelled images."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the recalibrated bundle copy."),
    in_place: bool = typer.Option(False, "--in-place", help="Rewrite the bundle's card instead of copying."),
    split: str = typer.Option("val", help="Split to calibrate on (never the test split you report)."),
    target_recall: float = typer.Option(0.995, help="Defect recall to reach (0.995 = at most 0.5% escapes)."),
    review_false_reject: float = typer.Option(
        None, help="Add a review band: automatic fails may reject at most this share of good parts."),
    no_defects_fallback: bool = typer.Option(
        False, "--no-defects-fallback", help="Without defects (or good parts) in the split, keep threshold 0.5."),
    backend: str = typer.Option("auto", help="onnx, torch or auto."),
) -> None:
    """Choose the fail threshold (and optional review band) so defect recall meets the target; report the
    false-reject rate it costs. Weights are untouched; only card.json changes."""
    from training.recalibrate import recalibrate_bundle

    if (out is None) == (not in_place):
        fail("give either --out NEW_FOLDER or --in-place")
    cal, card = recalibrate_bundle(model, data, out=model if in_place else out, split=split,
                                   target_recall=target_recall, review_false_reject=review_false_reject,
                                   fallback=no_defects_fallback, backend=backend)
    th = cal.thresholds
    if not cal.calibrated:
        console.print(f"[yellow]not calibrated[/]: {cal.note}", highlight=False)
    else:
        review = "" if th.review is None else f", review >= {th.review:.4g} ({100 * cal.review_rate:.2f}% reviewed)"
        console.print(
            f"fail >= {th.fail:.4g}{review}: defect recall {100 * cal.defect_recall:.2f}% (target "
            f"{100 * cal.target_recall:.2f}%), false-reject rate {100 * cal.false_reject_rate:.2f}% on "
            f"{cal.defects} defective / {cal.good} good {split} images", highlight=False)
        if cal.note:
            console.print(f"[yellow]note[/]: {cal.note}", highlight=False)
    console.print(f"bundle {model if in_place else out} ({card.name}@{card.version})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)
