"""``train(config) -> TrainResult``: labelled dataset -> calibrated, parity-checked model bundle.

The pieces live in their own modules (data, fitting, loop, stopping, checkpoint, finalize); this
file only wires them: resolve the config, load the data, resume, run the epochs, finalize.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from datasets.layout import Dataset, DatasetError
from inspection.card import ANOMALY
from inspection.cores import usable_cores
from inspection.predictor import Preparer
from inspection.preprocess import PreprocessConfig
from training import distributed
from training.calibration import LabelledScores
from training.checkpoint import cpu_state, load_checkpoint, restore_last, save_checkpoint, save_last
from training.config import TrainConfig
from training.data import CachedSplit, load_split
from training.data_view import is_good_only, training_dataset, view_of, with_anomaly_class
from training.finalize import finalize
from training.fitting import Fit, build_fit
from training.loop import nll, predict, train_epoch
from training.metrics import classification_metrics
from training.plots import learning_curves
from training.progress import Reporter
from training.recipe import frame_size
from training.recipe import resolve as resolve_recipe
from training.result import TrainResult
from training.run_dir import RunDir
from training.sampling import epoch_seed
from training.stopping import Progress


def _threads(config: TrainConfig) -> int:
    cores = usable_cores()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # processes torchrun put on this machine
    return config.threads or max(1, cores // local)


def resolve_config(config: TrainConfig, dataset: Dataset) -> tuple[TrainConfig, str]:
    """Fill defaults that depend on the data, and say which recipe and why; a fine-tuned model keeps
    its parent's recipe and preprocessing."""
    if config.name is None:
        config = config.with_(name=dataset.root.resolve().name)
    hint = dataset.info.extra.get("preprocess") or {}  # what 'dataset synth' knows suits its frames
    inherited = 0.0  # a fine-tune keeps synthesizing defects when its parent did (real ones mix in)
    if config.fixture == "auto":
        config = config.with_(fixture=hint.get("fixture") if hint.get("fixture") in ("bright", "dark") else "none")
    if config.init_from:
        from inspection.bundle import load_bundle

        parent = load_bundle(config.init_from, verify=False).card
        pre = parent.preprocess
        config = config.with_(arch=parent.arch, input_size=tuple(pre.input_size), color=pre.color,
                              mean=tuple(pre.mean), std=tuple(pre.std), roi=None if pre.roi is None else tuple(pre.roi),
                              fixture=pre.fixture or "none", fixture_margin=pre.fixture_margin,
                              recipe="native" if pre.native else "whole-frame", scale=pre.scale,
                              crop=pre.input_size[0] if pre.native else None)
        inherited = float((parent.extra.get("training") or {}).get("synthesize") or 0.0)
    if config.good_only is None:
        config = config.with_(good_only=is_good_only(dataset))
    if config.synthesize is None:
        config = config.with_(synthesize=0.5 if config.good_only else inherited)
    config, why = resolve_recipe(config, dataset)
    if config.color == "auto":
        color = hint.get("color") if hint.get("color") in ("rgb", "gray") else None
        if color is None and config.recipe == "native":
            color = "gray" if _gray_frames(dataset) else "rgb"  # a third of the pixels to decode and learn
        config = config.with_(color=color or "rgb")
    if config.input_size is None:
        # a fixtured part is cropped square-ish around itself, so the frame's aspect does not apply
        size = (config.long_side,) * 2 if config.fixture != "none" else None
        config = config.with_(input_size=size or _input_size_for(dataset, config.long_side, config.roi))
    return config.with_(mean=config.resolved_mean, std=config.resolved_std), why


def _gray_frames(dataset: Dataset) -> bool:
    """Whether the training frames are stored with one channel (the first readable one decides)."""
    import cv2
    import numpy as np

    for sample in dataset.split("train")[:5]:
        img = cv2.imread(str(dataset.abspath(sample)), cv2.IMREAD_UNCHANGED)
        if img is not None:
            return img.ndim == 2 or img.shape[2] == 1 or bool(np.array_equal(img[..., 0], img[..., 1])
                                                               and np.array_equal(img[..., 1], img[..., 2]))
    return False


def _input_size_for(dataset: Dataset, long_side: int, roi: tuple[int, int, int, int] | None) -> tuple[int, int]:
    """Keep the camera's (or ROI's) aspect ratio: the longer side becomes ``long_side``, the other a multiple of 8."""
    frame = (roi[3], roi[2]) if roi is not None else frame_size(dataset)
    if frame is None:
        return long_side, long_side
    h, w = frame
    short = max(16, round(long_side * min(h, w) / max(h, w) / 8) * 8)
    return (long_side, short) if h >= w else (short, long_side)


def _check_splits(train: CachedSplit, val: CachedSplit, classes: tuple[str, ...], pass_classes: tuple[str, ...],
                  config: TrainConfig) -> None:
    """Refuse before hours of training what would be refused at the end."""
    for split in (train, val):
        if len(split) == 0:
            raise DatasetError(f"the {split.name} split is empty: assign splits with 'defectscope dataset split'")
    if pass_classes and not config.no_defects_fallback and not config.good_only:
        counts = val.class_counts(len(classes))
        good = sum(int(counts[i]) for i, c in enumerate(classes) if c in pass_classes)
        if good == 0 or good == len(val):
            from training.calibration import CalibrationError

            missing = "good" if good == 0 else "defective"
            raise CalibrationError(
                f"the val split has no {missing} images, so the fail threshold cannot be calibrated: add some, "
                "or pass --no-defects-fallback to keep the uncalibrated 0.5 threshold"
            )


def train(config: TrainConfig, *, progress: bool = True, restart: bool = False,
          reporter: Reporter | None = None, pool: LabelledScores | None = None) -> TrainResult:
    """Train, calibrate and bundle; resumes from ``config.out`` when it holds this same unfinished run.

    ``progress`` shows live bars; epoch lines go to stderr either way (pass a quiet ``reporter``
    to silence them). ``restart`` discards a previous run in ``config.out``.

    ``pool``: calibrate on these scores instead of the val split's (cross-fitting: training/crossfit.py).

    Run it under torchrun for DistributedDataParallel (gloo on CPU, NCCL on GPUs).
    """
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    dist = distributed.init_distributed(use_cuda)
    try:
        return _train(config, dist, use_cuda, reporter or Reporter(dist.is_main, bars=progress), restart, pool)
    finally:
        distributed.shutdown(dist)


def _train(config: TrainConfig, dist: distributed.DistInfo, use_cuda: bool, rep: Reporter,
           restart: bool, pool: LabelledScores | None) -> TrainResult:
    device = torch.device(f"cuda:{dist.local_rank}" if use_cuda else "cpu")
    threads = _threads(config)
    torch.set_num_threads(threads)
    dataset = training_dataset(config)
    config, why = resolve_config(config, dataset)
    rep.message(why)
    if config.good_only:
        rep.message(f"[bold yellow]good-only training[/] ({view_of(dataset)['good_only']}): defects are "
                    f"synthesized on {config.synthesize:.0%} of the good images and the fail threshold comes "
                    "from a false-reject budget; recall cannot be measured until real defects are evaluated")
    if config.synthesize:
        dataset = with_anomaly_class(dataset)
    run = RunDir(config.out_path)
    if dist.is_main:
        run.prepare(config, restart=restart)  # refuses a folder holding a run with other settings
    distributed.barrier(dist)
    done = run.finished()
    if done is not None:
        rep.message(f"{run.root} already holds this finished run; its bundle is {run.bundle} (--restart redoes it)")
        return TrainResult.from_dict(done)

    classes = tuple(dataset.info.classes)
    pass_classes = tuple(c for c in dataset.info.pass_classes if c in classes)
    preparer = Preparer(PreprocessConfig(tuple(config.input_size), config.color, config.resolved_mean,
                                         config.resolved_std, config.roi,
                                         None if config.fixture == "none" else config.fixture,
                                         config.fixture_margin, scale=config.scale,
                                         tile=config.tile if config.recipe == "native" else None))
    pre = preparer.preprocessor
    rep.message(f"decoding {len(dataset.split('train')) + len(dataset.split('val'))} images once "
                f"({config.input_size[0]}x{config.input_size[1]} {config.color}, {threads} threads)")
    train_split = load_split(dataset, "train", classes, preparer, threads=threads, masks=config.mask_loss > 0)
    val_split = load_split(dataset, "val", classes, preparer, threads=threads)
    skipped = train_split.skipped + val_split.skipped
    for line in skipped[:10]:
        rep.message(f"[yellow]skipped[/] {line}")
    _check_splits(train_split, val_split, classes, pass_classes, config)
    fit = build_fit(config, train_split, classes, pass_classes, pre, device, dist, use_cuda, rep)

    progress, resumed_from = Progress(), None
    if run.last.is_file():
        progress = Progress.from_dict(restore_last(run.last, fit, dataset.fingerprint(), classes))
        resumed_from = progress.epoch
        rep.message(f"resuming {run.root} after epoch {resumed_from} (best so far: epoch {progress.best_epoch})")
    per_class = {c: n for c, n in zip(classes, train_split.class_counts(len(classes)).tolist(), strict=True)
                 if n or c != ANOMALY}  # synthesized anomalies are drawn per epoch, said above
    rep.message(f"training {config.arch} on {len(train_split)} images ({per_class}), "
                f"validating on {len(val_split)}, up to {config.epochs} epochs on {device}")
    stop_reason = "completed"
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        row = _epoch(config, fit, epoch, val_split, classes, pass_classes, device, dist, rep)
        progress.elapsed += row["seconds"]
        improved = progress.record(row, config.monitor)
        if dist.is_main:
            _checkpoint(run, fit, progress, improved, dataset.fingerprint(), classes)
        eta_min = (config.epochs - epoch) * progress.elapsed / epoch / 60  # at most; early stopping may cut it
        rep.message(f"epoch {epoch:>3}  loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  "
                    f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  "
                    f"val_f1 {row['val_macro_f1']:.4f}  {row['seconds']:.0f}s  eta <={eta_min:.1f} min"
                    + ("  *best" if improved else ""))
        reason = progress.stop_reason(config)
        if distributed.broadcast_flag(reason is not None, dist):
            stop_reason = reason or "early stopping"
            rep.message(f"stopping: {stop_reason} (best epoch {progress.best_epoch})")
            break
    distributed.barrier(dist)
    result = TrainResult(run.root, run.bundle, progress.best_epoch, progress.epoch, stop_reason,
                         round(progress.elapsed, 1), {}, resumed_from_epoch=resumed_from, skipped_images=skipped)
    if not dist.is_main:
        return result
    fit.model.load_state_dict(load_checkpoint(run.best)["model"])
    return finalize(config, dataset, fit.model, fit.parent, val_split, pre, run, rep, result, pool)


def _epoch(config: TrainConfig, fit: Fit, epoch: int, val: CachedSplit, classes: tuple[str, ...],
           pass_classes: tuple[str, ...], device: torch.device, dist: distributed.DistInfo,
           rep: Reporter) -> dict[str, Any]:
    """One pass over the training images, then the validation figures: the epoch's history row."""
    t0 = time.perf_counter()
    fit.sampler.set_epoch(epoch)
    fit.loader.dataset.set_epoch(epoch)  # native crops: where they fall
    torch.manual_seed(epoch_seed(config.seed, epoch, dist.rank))  # dropout
    fit.augment.set_random_seed(epoch_seed(config.seed, epoch, dist.rank))
    rep.start(f"epoch {epoch}/{config.epochs}", len(fit.loader))
    try:
        loss, acc = train_epoch(fit.net, fit.loader, fit.optimizer, fit.scheduler, fit.loss_fn, device, fit.scaler,
                                config.amp, lambda lo, ac: rep.advance(f"loss {lo:.4f} acc {ac:.3f}"), fit.aux)
    finally:
        rep.stop()
    loss, acc = distributed.all_mean([loss, acc], dist)
    probs = predict(fit.model, val, fit.loader.dataset.preprocessor, device, config.eval_batch_size, config.amp)
    vm = classification_metrics(probs, val.labels, classes, pass_classes)
    return {"epoch": epoch, "train_loss": loss, "train_acc": acc, "val_loss": nll(probs, val.labels),
            "val_acc": vm["accuracy"], "val_macro_f1": vm["macro_f1"], "lr": fit.scheduler.get_last_lr()[0],
            "seconds": round(time.perf_counter() - t0, 2)}


def _checkpoint(run: RunDir, fit: Fit, progress: Progress, improved: bool, fingerprint: str,
                classes: tuple[str, ...]) -> None:
    if improved:
        save_checkpoint(run.best, {"model": cpu_state(fit.model), "epoch": progress.epoch})
    save_last(run.last, fit, progress.to_dict(), fingerprint, classes)
    run.write_history(progress.history)
    learning_curves(progress.history, run.curves)
