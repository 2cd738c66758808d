"""``train(config) -> TrainResult``: labelled dataset -> calibrated, parity-checked model bundle.

The pieces live in their own modules (data, augment, loop, sampling, checkpoint, calibration,
finalize); this file only wires them: seeds, resume, early stopping, the time limit, DDP.
"""

from __future__ import annotations

import math
import os
import time
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from datasets.layout import Dataset, DatasetError
from inspection.errors import DefectscopeError
from inspection.preprocess import PreprocessConfig, Preprocessor
from training import distributed
from training.augment import build_augment
from training.checkpoint import CheckpointError, cpu_state, load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import AugmentedImages, CachedSplit, load_split
from training.finalize import finalize
from training.loop import nll, predict, train_epoch
from training.mask_loss import WithMaskHead, mask_loss
from training.metrics import classification_metrics
from training.model_init import build_network, from_bundle, set_bn_momentum
from training.plots import learning_curves
from training.progress import Reporter
from training.result import TrainResult
from training.run_dir import RunDir
from training.sampling import EpochSampler, class_weights, epoch_seed


def _threads(config: TrainConfig) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # processes torchrun put on this machine
    return config.threads or max(1, cores // local)


def _resolve(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """Fill defaults that depend on the data; a fine-tuned model keeps its parent's preprocessing."""
    if config.name is None:
        config = config.with_(name=dataset.root.resolve().name)
    hint = dataset.info.extra.get("preprocess") or {}  # what 'dataset synth' knows suits its frames
    if config.color == "auto":
        config = config.with_(color=hint.get("color") if hint.get("color") in ("rgb", "gray") else "rgb")
    if config.fixture == "auto":
        config = config.with_(fixture=hint.get("fixture") if hint.get("fixture") in ("bright", "dark") else "none")
    if config.input_size is None and not config.init_from:
        # a fixtured part is cropped square-ish around itself, so the frame's aspect does not apply
        size = (config.long_side,) * 2 if config.fixture != "none" else None
        config = config.with_(input_size=size or _input_size_for(dataset, config.long_side, config.roi))
    if config.init_from:
        from inspection.bundle import load_bundle

        pre = load_bundle(config.init_from).card.preprocess
        config = config.with_(arch=load_bundle(config.init_from, verify=False).card.arch,
                              input_size=tuple(pre.input_size), color=pre.color, mean=tuple(pre.mean),
                              std=tuple(pre.std), roi=None if pre.roi is None else tuple(pre.roi),
                              fixture=pre.fixture or "none", fixture_margin=pre.fixture_margin)
    return config.with_(mean=config.resolved_mean, std=config.resolved_std)


def _input_size_for(dataset: Dataset, long_side: int, roi: tuple[int, int, int, int] | None) -> tuple[int, int]:
    """Keep the camera's (or ROI's) aspect ratio: the longer side becomes ``long_side``, the other a multiple of 8."""
    from inspection.imageinfo import read_image_info

    if roi is not None:
        h, w = roi[3], roi[2]
    else:
        for sample in dataset.split("train")[:20]:
            try:
                info = read_image_info(dataset.abspath(sample).read_bytes())
                h, w = info.height, info.width
                break
            except (OSError, DefectscopeError):
                continue
        else:
            return long_side, long_side
    short = max(16, round(long_side * min(h, w) / max(h, w) / 8) * 8)
    return (long_side, short) if h >= w else (short, long_side)


def _check_splits(train: CachedSplit, val: CachedSplit, classes: tuple[str, ...], pass_classes: tuple[str, ...],
                  config: TrainConfig) -> None:
    """Refuse before hours of training what would be refused at the end."""
    for split in (train, val):
        if len(split) == 0:
            raise DatasetError(f"the {split.name} split is empty: assign splits with 'defectscope dataset split'")
    if pass_classes and not config.no_defects_fallback:
        counts = val.class_counts(len(classes))
        good = sum(int(counts[i]) for i, c in enumerate(classes) if c in pass_classes)
        if good == 0 or good == len(val):
            from training.calibration import CalibrationError

            missing = "good" if good == 0 else "defective"
            raise CalibrationError(
                f"the val split has no {missing} images, so the fail threshold cannot be calibrated: add some, "
                "or pass --no-defects-fallback to keep the uncalibrated 0.5 threshold"
            )


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up, then cosine decay to zero over the planned epochs (stepped per batch)."""
    total = max(1, config.epochs * steps_per_epoch)
    warm = int(config.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _score(metrics: dict[str, Any], monitor: str) -> tuple[float, ...]:
    """Larger is better; ties on accuracy or F1 go to the lower validation loss."""
    if monitor == "loss":
        return (-metrics["val_loss"],)
    return (metrics[f"val_{'acc' if monitor == 'accuracy' else monitor}"], -metrics["val_loss"])


def train(config: TrainConfig, *, progress: bool = True, restart: bool = False,
          reporter: Reporter | None = None) -> TrainResult:
    """Train, calibrate and bundle; resumes from ``config.out`` when it holds this same unfinished run.

    ``progress`` shows live bars; epoch lines go to stderr either way (pass a quiet ``reporter``
    to silence them). ``restart`` discards a previous run in ``config.out``.

    Run it under torchrun for DistributedDataParallel (gloo on CPU, NCCL on GPUs).
    """
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    dist = distributed.init_distributed(use_cuda)
    try:
        return _train(config, dist, use_cuda, reporter or Reporter(dist.is_main, bars=progress), restart)
    finally:
        distributed.shutdown(dist)


def _train(config: TrainConfig, dist: distributed.DistInfo, use_cuda: bool, rep: Reporter,
           restart: bool) -> TrainResult:
    device = torch.device(f"cuda:{dist.local_rank}" if use_cuda else "cpu")
    threads = _threads(config)
    torch.set_num_threads(threads)
    dataset = Dataset.load(config.data)
    config = _resolve(config, dataset)
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
    pre = Preprocessor(PreprocessConfig(tuple(config.input_size), config.color, config.resolved_mean,
                                        config.resolved_std, config.roi,
                                        None if config.fixture == "none" else config.fixture, config.fixture_margin))
    rep.message(f"decoding {len(dataset.split('train')) + len(dataset.split('val'))} images once "
                f"({config.input_size[0]}x{config.input_size[1]} {config.color}, {threads} threads)")
    train_split = load_split(dataset, "train", classes, pre, threads=threads, masks=config.mask_loss > 0)
    val_split = load_split(dataset, "val", classes, pre, threads=threads)
    skipped = train_split.skipped + val_split.skipped
    for line in skipped[:10]:
        rep.message(f"[yellow]skipped[/] {line}")
    _check_splits(train_split, val_split, classes, pass_classes, config)

    torch.manual_seed(config.seed)  # the same initial weights on every rank and every attempt
    if config.init_from:
        model, parent = from_bundle(config.init_from, classes)
    else:
        model, parent = build_network(config.arch, classes, pre.config.channels, config.weights), None
    set_bn_momentum(model, config.bn_momentum)
    trained: nn.Module = model  # the model, or the model with its training-only mask head
    aux = None
    if train_split.masks is not None:
        trained = WithMaskHead(model, classes, pass_classes)
        aux = partial(mask_loss, defect_index=trained.defect_index, weight=config.mask_loss)
        rep.message(f"defect masks found for {sum(m is not None for m in train_split.masks)} training images: "
                    f"adding the mask loss (weight {config.mask_loss})")
    trained.to(device, memory_format=torch.channels_last)
    counts = train_split.class_counts(len(classes))
    weights = class_weights(counts)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device) if config.balance == "loss" else None,
        label_smoothing=config.label_smoothing,
    )
    if config.balance == "sampler" and dist.enabled:
        from training.config import TrainConfigError

        raise TrainConfigError("balance='sampler' is not supported under torchrun; use balance='loss'")
    sampler = EpochSampler(train_split.labels, config.seed, rank=dist.rank, world_size=dist.world_size,
                           weights=weights if config.balance == "sampler" else None)
    augment = build_augment(config.augment, tuple(config.input_size), seed=config.seed)
    loader = DataLoader(AugmentedImages(train_split, pre, augment), batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.num_workers, drop_last=len(sampler) > config.batch_size,
                        pin_memory=use_cuda, persistent_workers=config.num_workers > 0)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config, len(loader))
    scaler = torch.amp.GradScaler("cuda") if use_cuda and config.amp else None

    state: dict[str, Any] = {"epoch": 0, "best_score": None, "best_epoch": 0, "bad_epochs": 0, "history": [],
                             "elapsed": 0.0}
    resumed_from = None
    if run.last.is_file():
        ck = load_checkpoint(run.last)
        if ck.get("fingerprint") != dataset.fingerprint() or tuple(ck.get("classes", ())) != classes:
            raise CheckpointError(f"{run.last} was trained on other data (the dataset changed): pass --restart")
        model.load_state_dict(ck["model"])
        if aux is not None and ck.get("mask_head"):
            trained.head.load_state_dict(ck["mask_head"])  # type: ignore[union-attr]
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        state = {k: ck[k] for k in state}
        state["best_score"] = tuple(state["best_score"]) if state["best_score"] is not None else None
        resumed_from = state["epoch"]
        rep.message(f"resuming {run.root} after epoch {resumed_from} (best so far: epoch {state['best_epoch']})")
    net: nn.Module = trained
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(trained, device_ids=[dist.local_rank] if use_cuda else None)

    stop_reason = "completed"
    per_class = dict(zip(classes, counts.tolist(), strict=True))
    rep.message(f"training {config.arch} on {len(train_split)} images ({per_class}), "
                f"validating on {len(val_split)}, up to {config.epochs} epochs on {device}")
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        torch.manual_seed(epoch_seed(config.seed, epoch, dist.rank))  # dropout
        augment.set_random_seed(epoch_seed(config.seed, epoch, dist.rank))
        rep.start(f"epoch {epoch}/{config.epochs}", len(loader))
        try:
            loss, acc = train_epoch(net, loader, optimizer, scheduler, loss_fn, device, scaler, config.amp,
                                    lambda lo, ac: rep.advance(f"loss {lo:.4f} acc {ac:.3f}"), aux)
        finally:
            rep.stop()
        loss, acc = distributed.all_mean([loss, acc], dist)
        probs = predict(model, val_split, pre, device, config.eval_batch_size, config.amp)
        vm = classification_metrics(probs, val_split.labels, classes, pass_classes)
        state["elapsed"] += time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": loss, "train_acc": acc, "val_loss": nll(probs, val_split.labels),
               "val_acc": vm["accuracy"], "val_macro_f1": vm["macro_f1"], "lr": scheduler.get_last_lr()[0],
               "seconds": round(time.perf_counter() - t0, 2)}
        score = _score(row, config.monitor)
        improved = state["best_score"] is None or score > state["best_score"]
        if improved:
            state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        row["best"] = improved
        state["history"].append(row)
        state["epoch"] = epoch
        if dist.is_main:
            if improved:
                save_checkpoint(run.best, {"model": cpu_state(model), "epoch": epoch})
            save_checkpoint(run.last, {**state, "model": cpu_state(model), "optimizer": optimizer.state_dict(),
                                       "scheduler": scheduler.state_dict(), "fingerprint": dataset.fingerprint(),
                                       "scaler": scaler.state_dict() if scaler is not None else None,
                                       "mask_head": cpu_state(trained.head) if aux is not None else None,
                                       "classes": list(classes)})
            run.write_history(state["history"])
            learning_curves(state["history"], run.curves)
        eta_min = (config.epochs - epoch) * state["elapsed"] / epoch / 60  # at most; early stopping may cut it
        rep.message(f"epoch {epoch:>3}  loss {loss:.4f}  acc {acc:.4f}  val_loss {row['val_loss']:.4f}  "
                    f"val_acc {row['val_acc']:.4f}  val_f1 {row['val_macro_f1']:.4f}  {row['seconds']:.0f}s  "
                    f"eta <={eta_min:.1f} min" + ("  *best" if improved else ""))
        stop = False
        if config.patience and state["bad_epochs"] >= config.patience and epoch >= config.min_epochs:
            stop, stop_reason = True, "early stopping"
        elif config.time_limit_min is not None and state["elapsed"] / 60 >= config.time_limit_min:
            stop, stop_reason = True, "time limit"
        if distributed.broadcast_flag(stop, dist):
            rep.message(f"stopping: {stop_reason} (best epoch {state['best_epoch']})")
            break
    distributed.barrier(dist)
    if not dist.is_main:
        return TrainResult(run.root, run.bundle, state["best_epoch"], state["epoch"], stop_reason,
                           state["elapsed"], {}, resumed_from_epoch=resumed_from)
    best = load_checkpoint(run.best)
    model.load_state_dict(best["model"])
    return finalize(config, dataset, model, parent, val_split, pre, device, run, rep,
                    TrainResult(run.root, run.bundle, state["best_epoch"], state["epoch"], stop_reason,
                                round(state["elapsed"], 1), {}, resumed_from_epoch=resumed_from,
                                skipped_images=skipped))
