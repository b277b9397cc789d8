"""ResumableBatchSampler: epochs, ranks, resuming."""
import numpy as np
import pytest
from paddle.io import DistributedBatchSampler

from dataloaders.sampler import ResumableBatchSampler


class Sized:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


def batches(size=10, batch_size=3, total_iters=12, **kwargs):
    return list(ResumableBatchSampler(Sized(size), batch_size, total_iters, **kwargs))


def test_epochs_cover_every_file_once_with_global_ids():
    size, batch_size = 10, 3  # 3 full batches per epoch, last incomplete batch dropped
    result = batches(size, batch_size, total_iters=12, num_replicas=1, rank=0, seed=5)
    assert len(result) == 12 and all(len(b) == batch_size for b in result)
    for epoch in range(4):
        ids = np.concatenate(result[3 * epoch:3 * epoch + 3])
        assert ids.min() >= epoch * size and ids.max() < (epoch + 1) * size
        assert len(set(ids % size)) == 9  # distinct files: one dropped per epoch
    orders = [tuple(np.concatenate(result[3 * e:3 * e + 3]) % size) for e in range(4)]
    assert len(set(orders)) == 4  # a new permutation every epoch


def test_order_depends_only_on_seed():
    first = batches(num_replicas=1, rank=0, seed=1)
    assert first == batches(num_replicas=1, rank=0, seed=1)
    assert first != batches(num_replicas=1, rank=0, seed=2)


@pytest.mark.parametrize('start', [0, 1, 3, 7, 12])
def test_starting_at_an_iteration_continues_the_full_run(start):
    full = batches(num_replicas=2, rank=1, seed=3)
    resumed = ResumableBatchSampler(Sized(10), 3, 12, start_iter=start, num_replicas=2, rank=1,
                                    seed=3)
    assert len(resumed) == 12 - start
    assert list(resumed) == full[start:]


def test_ranks_split_each_global_batch():
    """Rank r's batch is block r of the single-card batch of size world x per-card batch."""
    size, per_card, world = 17, 2, 3
    single = batches(size, per_card * world, total_iters=8, num_replicas=1, rank=0, seed=4)
    per_rank = [batches(size, per_card, total_iters=8, num_replicas=world, rank=r, seed=4)
                for r in range(world)]
    for it in range(8):
        blocks = [per_rank[r][it] for r in range(world)]
        assert sum(blocks, []) == single[it]
        assert len(set(sum(blocks, []))) == per_card * world


def test_split_matches_paddle_distributed_batch_sampler():
    size, per_card, world = 13, 2, 2
    for rank in range(world):
        one_epoch = batches(size, per_card, total_iters=3, num_replicas=world, rank=rank,
                            shuffle=False)
        expected = DistributedBatchSampler(Sized(size), per_card, num_replicas=world, rank=rank,
                                           shuffle=False, drop_last=True)
        assert one_epoch == list(expected)


def test_too_small_dataset_is_an_error():
    with pytest.raises(ValueError, match='fewer than one batch'):
        ResumableBatchSampler(Sized(3), 2, 10, num_replicas=2, rank=0)
    with pytest.raises(ValueError, match='start_iter'):
        ResumableBatchSampler(Sized(8), 2, 10, start_iter=11, num_replicas=1, rank=0)
