"""Reading training batches: a worker's unreadable sample reaches the main process with its
message, and a loader without workers reads in the calling thread."""
from typing import Any, Dict, Iterator

import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from utils.image_io import ImageReadError


class ReportingDataset(paddle.io.Dataset):
    """The training set, passing the message of a sample that cannot be read to the main
    process: Paddle replaces a worker's exception with a generic 'Blocking queue is killed'."""

    def __init__(self, dataset: paddle.io.Dataset, errors: Any):
        super().__init__()
        self.dataset, self.errors = dataset, errors

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        try:
            return self.dataset[index]
        except (ImageReadError, ValueError, OSError) as err:
            self.errors.put(str(err))
            raise


class InlineLoader:
    """The batches of ``sampler`` read in the calling thread, collated as Paddle's loader
    does: a sample that cannot be read raises here, with its message."""

    def __init__(self, dataset: paddle.io.Dataset, sampler: Any):
        self.dataset, self.sampler = dataset, sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for indices in self.sampler:
            batch = default_collate_fn([self.dataset[i] for i in indices])
            yield {key: paddle.to_tensor(value) if isinstance(value, np.ndarray) else value
                   for key, value in batch.items()}
