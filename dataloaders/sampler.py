"""Iteration-based, resumable batch sampler for single- and multi-card training.

Training is counted in iterations (the official code runs to ``niter``), so the
sampler yields exactly one batch per remaining iteration. Each epoch is a fresh
permutation drawn from ``np.random.default_rng([seed, epoch])``, cut into global
batches of ``world_size x batch_size`` (the last incomplete one dropped, as the
official loader does), and each global batch is split between ranks as
``paddle.io.DistributedBatchSampler`` splits it: rank ``r`` takes block ``r``. With
the last batch dropped no padding is needed, so every sample appears at most once
per epoch and N cards x batch B see exactly the batches of one card with N x B.
The batch of iteration ``it`` depends only on ``(seed, it)``: starting at any
iteration reproduces an uninterrupted run.

Indices are *global sample ids* ``epoch * len(dataset) + i``; ``LQGTRNDataset``
maps them back to file ``i`` and draws the crop and flips from the full id, so each
epoch gets new, reproducible augmentation.
"""
from typing import Iterator, List, Optional, Sized

import numpy as np
from paddle.io import DistributedBatchSampler


class ResumableBatchSampler(DistributedBatchSampler):
    """Batches of global sample ids for iterations ``start_iter .. total_iters - 1``.

    Args:
        dataset: anything with ``len()``; the training set.
        batch_size: samples per batch on this rank (per card).
        total_iters: the iteration count of the whole run (``train.niter``).
        start_iter: the first iteration to produce (the resumed iteration count).
        seed: seed of the per-epoch permutation.
        num_replicas, rank: world size and this rank; from ``paddle.distributed``'s
            environment when None.
        shuffle: permute each epoch (the official ``use_shuffle``); else keep file order.
    """

    def __init__(self, dataset: Sized, batch_size: int, total_iters: int, start_iter: int = 0,
                 seed: int = 0, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True):
        super().__init__(dataset, batch_size, num_replicas=num_replicas, rank=rank,
                         shuffle=shuffle, drop_last=True)
        if not 0 <= start_iter <= total_iters:
            raise ValueError(f'start_iter must be in [0, total_iters={total_iters}], '
                             f'got {start_iter}')
        self.batches_per_epoch = len(dataset) // (self.batch_size * self.nranks)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f'the training set has {len(dataset)} samples, fewer than one batch on each '
                f'card (batch_size {batch_size} x {self.nranks} cards); lower '
                'datasets.train.batch_size or add training images')
        self.total_iters = total_iters
        self.start_iter = start_iter
        self.seed = seed

    def epoch_order(self, epoch: int) -> np.ndarray:
        """This epoch's order of file indices (the same on every rank)."""
        size = len(self.dataset)
        return (np.random.default_rng([self.seed, epoch]).permutation(size) if self.shuffle
                else np.arange(size))

    def batch_at(self, iteration: int, order: Optional[np.ndarray] = None) -> List[int]:
        """Global sample ids of this rank's batch at ``iteration``."""
        epoch, position = divmod(iteration, self.batches_per_epoch)
        if order is None:
            order = self.epoch_order(epoch)
        start = (position * self.nranks + self.local_rank) * self.batch_size
        offset = epoch * len(self.dataset)
        return [offset + int(i) for i in order[start:start + self.batch_size]]

    def __iter__(self) -> Iterator[List[int]]:
        epoch, order = None, None
        for iteration in range(self.start_iter, self.total_iters):
            if iteration // self.batches_per_epoch != epoch:
                epoch = iteration // self.batches_per_epoch
                order = self.epoch_order(epoch)
            yield self.batch_at(iteration, order)

    def __len__(self) -> int:
        return self.total_iters - self.start_iter

    def set_epoch(self, epoch: int) -> None:
        raise NotImplementedError('ResumableBatchSampler is driven by iterations: pass '
                                  'start_iter instead of calling set_epoch')
