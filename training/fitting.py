"""What one training run works with, built once: the network (with its training-only mask head when
there are masks), loss, sampler, augmentation, loader, optimizer, schedule, and the AMP scaler."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from inspection.preprocess import Preprocessor
from inspection.segdec import has_map
from training import distributed
from training.augment import build_augment
from training.config import TrainConfig, TrainConfigError
from training.crops import NativeCrops
from training.data import AugmentedImages, CachedSplit, with_clean_masks
from training.mask_loss import WithMaskHead, mask_loss
from training.model_init import build_network, from_bundle, set_bn_momentum
from training.progress import Reporter
from training.sampling import EpochSampler, class_weights
from training.segdec_loss import MapTraining, segdec_loss
from training.synth_defects import AnomalyLabels, SynthesizedDefects


@dataclass
class Fit:
    model: nn.Module  # the classifier that goes into the bundle
    trained: nn.Module  # the model, or the model with its mask head (what the optimizer updates)
    net: nn.Module  # ``trained``, wrapped in DDP under torchrun
    parent: Any  # the card fine-tuning started from, or None
    loss_fn: nn.Module
    aux: Any  # the mask loss, or None
    sampler: EpochSampler
    augment: Any
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up, then cosine decay to zero over the planned epochs (stepped per batch)."""
    total = max(1, config.epochs * steps_per_epoch)
    warm = int(config.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_fit(config: TrainConfig, train: CachedSplit, classes: tuple[str, ...], pass_classes: tuple[str, ...],
              pre: Preprocessor, device: torch.device, dist: distributed.DistInfo, use_cuda: bool,
              rep: Reporter) -> Fit:
    torch.manual_seed(config.seed)  # the same initial weights on every rank and every attempt
    if config.init_from:
        model, parent = from_bundle(config.init_from, classes, pass_classes)
    else:
        model, parent = build_network(config.arch, classes, pass_classes, pre.config.channels, config.weights), None
    set_bn_momentum(model, config.bn_momentum)
    trained: nn.Module = model
    aux = None
    pass_index = {i for i, c in enumerate(classes) if c in pass_classes}
    defect_index = [i for i in range(len(classes)) if i not in pass_index]
    anomaly, synth = None, None
    if config.synthesize:
        anomaly = AnomalyLabels.of(classes, pass_classes)
        train = with_clean_masks(train, anomaly)
        synth = SynthesizedDefects(textures=[im for im, lab in zip(train.images, train.labels, strict=True)
                                             if anomaly.clean(lab)], p=config.synthesize)
        rep.message(f"synthesizing defects ({', '.join(synth.kinds)}) on {config.synthesize:.0%} of the good "
                    f"training images each epoch, labelled {classes[anomaly.anomaly]!r}")
    images: Any
    if has_map(model):
        trained = MapTraining(model)
        aux = partial(segdec_loss, defect_index=defect_index or list(range(len(classes))), weight=config.mask_loss)
        masked = sum(m is not None and int(lab) not in pass_index
                     for m, lab in zip(train.masks, train.labels, strict=True)) if train.masks is not None else 0
        rep.message(f"native resolution (scale {config.scale:g}): {config.crop}-px crops, around the defect in "
                    f"the {masked} training images with a mask; whole frames for validation")
        # 90-degree turns only when the frames are square, as for whole frames: a crop of a tall frame
        # turned on its side shows a texture direction the line never produces
        frame = train.images[0].shape[:2] if len(train) else (config.crop, config.crop)
        turn = config.augment if frame[0] == frame[1] else replace(config.augment, rotate90=0.0)
        images = NativeCrops(train, pre, build_augment(turn, (config.crop, config.crop), seed=config.seed, first=synth),
                             config.crop, pass_index, seed=config.seed, anomaly=anomaly)
        labels = images.labels
    elif train.masks is not None:
        trained = WithMaskHead(model, classes, pass_classes)
        aux = partial(mask_loss, defect_index=trained.defect_index, weight=config.mask_loss)
        rep.message(f"defect masks for {sum(m is not None for m in train.masks)} training images"
                    f"{' (good ones: where a synthesized defect is drawn)' if synth else ''}: "
                    f"adding the mask loss (weight {config.mask_loss})")
    if not has_map(model):
        images = AugmentedImages(train, pre, build_augment(config.augment, tuple(config.input_size), seed=config.seed,
                                                           first=synth), anomaly=anomaly)
        labels = train.labels
    trained.to(device, memory_format=torch.channels_last)
    counts = np.bincount(labels, minlength=len(classes))
    weights = class_weights(counts if anomaly is None else anomaly.expected_counts(counts, config.synthesize))
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device) if config.balance == "loss" else None,
        label_smoothing=config.label_smoothing,
    )
    if config.balance == "sampler" and dist.enabled:
        raise TrainConfigError("balance='sampler' is not supported under torchrun; use balance='loss'")
    sampler = EpochSampler(labels, config.seed, rank=dist.rank, world_size=dist.world_size,
                           weights=weights if config.balance == "sampler" else None)
    loader = DataLoader(images, batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.num_workers, drop_last=len(sampler) > config.batch_size,
                        pin_memory=use_cuda, persistent_workers=config.num_workers > 0)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    net: nn.Module = trained
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(trained, device_ids=[dist.local_rank] if use_cuda else None)
    return Fit(model, trained, net, parent, loss_fn, aux, sampler, images.augment, loader, optimizer,
               _scheduler(optimizer, config, len(loader)),
               torch.amp.GradScaler("cuda") if use_cuda and config.amp else None)
