"""Epoch-seeded sampling and class balancing.

The order of an epoch depends only on (seed, epoch), so a run resumed at epoch k draws the
same batches as one that never stopped. Under DDP each rank takes every world_size-th index.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**31 - 1)


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights, 1.0 on average over the training samples; 0 for absent classes."""
    counts = counts.astype(np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


class EpochSampler(Sampler[int]):
    """Shuffled (or class-weighted, with replacement) indices, reproducible per epoch, sharded per rank."""

    def __init__(self, labels: np.ndarray, seed: int, *, rank: int = 0, world_size: int = 1,
                 weights: np.ndarray | None = None) -> None:
        self.labels = labels
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.sample_weights = None if weights is None else torch.as_tensor(weights[labels], dtype=torch.float64)
        self.epoch = 0
        self.per_rank = -(-len(labels) // world_size)  # ceil: every rank runs the same number of steps

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.labels)
        if self.sample_weights is not None:
            order = torch.multinomial(self.sample_weights, n, replacement=True, generator=g)
        else:
            order = torch.randperm(n, generator=g)
        total = self.per_rank * self.world_size
        order = torch.cat([order, order[: total - n]]) if total > n else order
        return iter(order[self.rank :: self.world_size].tolist())
