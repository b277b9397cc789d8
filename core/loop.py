"""The one image loop: items in, equal-size batches through the denoise routine, results out.

predict.py and infer.py (apps.images), the SIDD evaluation and training's validation
(core.evaluate), the SIDD benchmark submission (apps.sidd_submission) and the DND submission
(apps.dnd_submission) all iterate ``denoise_batches``: each supplies its items (tuples whose
second element is the noisy HWC float image in [0, 1]) and does its own writing and scoring
with the results. Items are read lazily, so a folder never has to fit in memory.
"""
from typing import Iterable, Iterator, List, Optional, Protocol, Tuple

import numpy as np

from core.denoise import Backend, DenoiseOptions, denoise_array


class StageClock(Protocol):
    """What times the loop's stages (apps.images.StageTimer): ``stamp`` ends one stage,
    ``restart_stage`` leaves the time since the last stamp out."""

    def stamp(self) -> None: ...

    def restart_stage(self) -> None: ...


def equal_size_batches(items: Iterable[tuple], batch_size: int) -> Iterator[List[tuple]]:
    """Consecutive items whose image (the item's second element, HWC) has the same shape and
    type (an 8- and a 16-bit image stacked together would be scaled as 16-bit), at most
    ``batch_size`` at a time: what ``denoise_array`` can take as one batch."""
    batch: List[tuple] = []
    for item in items:
        if batch and (len(batch) == batch_size or batch[0][1].shape != item[1].shape
                      or batch[0][1].dtype != item[1].dtype):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def denoise_batches(backend: Backend, items: Iterable[tuple], options: DenoiseOptions = DenoiseOptions(),
                    batch_size: int = 1, clock: Optional[StageClock] = None
                    ) -> Iterator[List[Tuple[tuple, np.ndarray]]]:
    """``(item, denoised HWC float32, not clipped)`` for each batch of ``items``.

    With a ``clock``, stamps once a batch is read and stacked and once it is denoised; the
    first batch is denoised once before it is timed, since the first run compiles kernels.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    warmed_up = clock is None
    for batch in equal_size_batches(items, batch_size):
        noisy = np.stack([item[1] for item in batch])
        if clock:
            clock.stamp()
        if not warmed_up:
            denoise_array(backend, noisy, options)
            clock.restart_stage()
            warmed_up = True
        denoised = denoise_array(backend, noisy, options)
        if clock:
            clock.stamp()
        yield list(zip(batch, denoised))
