"""``defectscope train --data DATASET --out RUN``: labelled images -> calibrated model bundle.

Re-running the same command on the same RUN folder resumes after the last finished epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from defectscope.commands._common import console, fail, user_errors


def parse_size(text: str) -> tuple[int, int]:
    """``128`` -> (128, 128); ``96x160`` -> (96, 160) as height x width."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        fail(f"--input-size takes N or HEIGHTxWIDTH (for example 128 or 96x160), not {text!r}")
    return parts[0], parts[1]


@user_errors
def train_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (layout with manifest.csv and splits)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config, metrics, plots, checkpoints, bundle/."),
    fold: int = typer.Option(None, "--fold", min=0, help="Hold out this cross-validation fold as test, train on "
                             "the others (assign folds with 'dataset split --folds K')."),
    folds: int = typer.Option(None, "--folds", min=2, help="Cross-fit: train K fold models, choose the thresholds "
                              "on their out-of-fold scores (K times the defects of one val split), then train "
                              "the final model on all folds. Uses the dataset's folds, or assigns K (grouped) "
                              "in memory."),
    carve_val: float = typer.Option(None, "--carve-val", min=0.01, max=0.9, help="Validate on this share of train "
                                    "(whole groups, stratified) when the dataset has no val split, or of the "
                                    "other folds with --fold (default 0.2); recorded on the card."),
    recipe: str = typer.Option(None, help="auto (default: chosen from the data, and said why), whole-frame (resize "
                               "each frame to the input size) or native (a defect-map network on crops at the "
                               "camera's resolution, whole frames inferred)."),
    arch: str = typer.Option(None, help="Architecture: whole-frame defectnet (default, trains from scratch on "
                             "CPUs), mobilenet_v3_small, mobilenet_v3_large, resnet18, resnet50 or efficientnet_b0; "
                             "native segdec."),
    scale: float = typer.Option(None, help="Native recipe: model pixels per camera pixel (default: keeps the "
                                "thinnest defects in the masks 4 px wide; 1, 0.5, 0.25 or 0.125)."),
    crop: int = typer.Option(None, help="Native recipe: training crop side in model pixels (default 256)."),
    tile: int = typer.Option(None, help="Native recipe: infer frames in overlapping tiles of this side (model "
                             "pixels, a multiple of 16 above 128) to bound memory; the same answer as one pass."),
    input_size: str = typer.Option(None, help="Model input, N or HEIGHTxWIDTH (default: see --long-side)."),
    long_side: int = typer.Option(None, min=16, help="Without --input-size: longer side in pixels, the camera's "
                                  "aspect ratio kept (default 160)."),
    color: str = typer.Option(None, help="rgb, gray or auto (default: the dataset's hint, else rgb)."),
    fixture: str = typer.Option(None, help="Crop around the part first: bright, dark, none or auto (default: the "
                                "dataset's hint, else none)."),
    mask_loss: float = typer.Option(None, min=0, help="Weight of the auxiliary defect-mask loss when the dataset "
                                    "has masks (default 1; 0 turns it off)."),
    epochs: int = typer.Option(None, min=1, help="Most epochs to train (default whole-frame 40, early stopping may "
                               "end sooner; native 120)."),
    batch_size: int = typer.Option(None, min=2, help="Images per step (default 16)."),
    lr: float = typer.Option(None, help="Peak learning rate of AdamW (default 0.001)."),
    patience: int = typer.Option(None, min=0, help="Epochs without improvement before stopping (0 = never; "
                                 "default whole-frame 10, native 0)."),
    monitor: str = typer.Option(None, help="Which epoch is kept: macro_f1 (whole-frame default), accuracy or loss "
                                "on the val split, or last (native default)."),
    balance: str = typer.Option(None, help="Class imbalance: loss (weighted loss, default), sampler or none."),
    good_only: bool = typer.Option(None, "--good-only/--no-good-only", help="Train on the good images only, "
                                   "against defects synthesized on them; the fail threshold comes from a "
                                   "false-reject budget on good val images. Default: on when the training split "
                                   "holds good images only (said so)."),
    synthesize: float = typer.Option(None, min=0, max=0.99, help="Share of good training images given a "
                                     "synthesized defect each epoch (default 0.5 good-only, else 0)."),
    weights: str = typer.Option(None, help="Pretrained weights: a torchvision name or a local .pth/.safetensors."),
    init_from: Path = typer.Option(None, "--init-from", help="Fine-tune this bundle (new classes allowed)."),
    augment: list[str] = typer.Option(None, "--augment", help="Augmentation override KEY=VALUE, repeatable."),
    target_recall: float = typer.Option(None, help="Defect recall the fail threshold must reach (default 0.995)."),
    review_false_reject: float = typer.Option(
        None, help="Review band: automatic fails may reject at most this share of good parts (default 0.01); "
        "parts between that threshold and the recall one go to review."),
    review_budget: float = typer.Option(None, help="Instead: at most this share of all parts goes to review."),
    no_review_band: bool = typer.Option(False, "--no-review-band", help="One threshold at the recall target."),
    no_defects_fallback: bool = typer.Option(
        False, "--no-defects-fallback", help="If val has no defects (or no good parts), keep threshold 0.5."),
    time_limit: float = typer.Option(None, "--time-limit", help="Stop after this many minutes (best epoch kept)."),
    seed: int = typer.Option(None, help="Random seed (default 0)."),
    name: str = typer.Option(None, help="Model name on the card (default: the dataset folder name)."),
    device: str = typer.Option(None, help="auto (GPU when present), cpu or cuda."),
    threads: int = typer.Option(None, min=1, help="CPU threads for torch (default: all cores available)."),
    config: Path = typer.Option(None, "--config", help="JSON file of training options; flags override it."),
    restart: bool = typer.Option(False, "--restart", help="Discard a previous run in --out and start over."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Train a classifier (or, for large frames with small masked defects, a defect-map network at native
    resolution), calibrate its fail threshold on val, and write a model bundle to OUT/bundle.

    Runs under torchrun for several GPUs or machines:
    torchrun --nproc_per_node 2 --no-python defectscope train ...
    """
    from training.config import TrainConfig, augment_from_dict, parse_overrides
    from training.trainer import train

    raw: dict = {}
    if config is not None:
        try:
            raw = json.loads(config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"cannot read training config {config}: {exc}")
    flags = {
        "data": str(data), "out": str(out), "recipe": recipe, "arch": arch, "scale": scale, "crop": crop, "tile": tile,
        "color": color, "fixture": fixture,
        "mask_loss": mask_loss, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "patience": patience, "monitor": monitor, "balance": balance,
        "weights": weights, "init_from": str(init_from) if init_from else None, "target_recall": target_recall,
        "review_false_reject": review_false_reject, "review_budget": review_budget, "folds": folds,
        "time_limit_min": time_limit, "seed": seed, "name": name,
        "device": device, "threads": threads, "long_side": long_side, "fold": fold, "carve_val": carve_val,
        "input_size": parse_size(input_size) if input_size else None, "good_only": good_only,
        "synthesize": synthesize,
    }
    raw.update({k: v for k, v in flags.items() if v is not None})
    if no_defects_fallback:
        raw["no_defects_fallback"] = True
    if no_review_band or review_budget is not None:
        raw["review_false_reject"] = None
    cfg = TrainConfig.from_dict(raw)
    if augment:
        cfg = cfg.with_(augment=augment_from_dict(parse_overrides(augment), cfg.augment))
    if cfg.folds is not None:
        if cfg.fold is not None:
            fail("give --folds K (cross-fit over all folds) or --fold I (hold one out), not both")
        from training.crossfit import train_folds

        crossfit = train_folds(cfg, progress=progress, restart=restart)
        result = crossfit.final
        if crossfit.report is not None:
            console.print(f"[bold]calibration report[/] {crossfit.report}", highlight=False)
        ens = crossfit.summary.get("ensemble_of_fold_models_on_test")
        if ens and ens["defects"] and ens["good"]:
            console.print(f"the {ens['models']} fold models as an ensemble on test (same thresholds, {ens['models']}x "
                          f"the inference): {ens['escapes']}/{ens['defects']} escapes, {ens['false_rejects']}/"
                          f"{ens['good']} false rejects, review {100 * ens['review_rate']:.1f}%", highlight=False)
    else:
        result = train(cfg, progress=progress, restart=restart)
    if not result.val_metrics:  # a torchrun rank other than 0: rank 0 reports
        return
    console.print(f"[bold]bundle[/] {result.bundle_path}", highlight=False)
    line = f"best epoch {result.best_epoch}/{result.epochs_run} ({result.stop_reason}), {result.train_seconds:.0f}s"
    line += f"; val accuracy {result.val_metrics['accuracy']:.4f}"
    if result.test_metrics:
        line += f"; test accuracy {result.test_metrics['accuracy']:.4f}"
        pf = result.test_metrics.get("pass_fail")
        if pf and pf["escape_rate"] is not None and pf["false_reject_rate"] is not None:
            line += (f", escape rate {pf['escape_rate']:.4f}, false-reject rate {pf['false_reject_rate']:.4f}, "
                     f"review rate {pf['review_rate']:.4f}")
    console.print(line, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
