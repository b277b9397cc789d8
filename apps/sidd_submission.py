"""A SIDD sRGB benchmark submission, as the official ``test_Real.py`` writes it, through the
one image loop (core.loop).

The benchmark's noisy blocks (``BenchmarkNoisyBlocksSrgb.mat``) are denoised, clipped and
quantised to uint8, and written as ``SUBMIT_DIR/SubmitSrgb.mat`` with ``DenoisedBlocksSrgb``
(the blocks' shape) and ``TimeMPSrgb``, the measured seconds per megapixel (the official code
writes 0.0). The file is written under a temporary name and renamed (utils.durable).
"""
import os
import time
from dataclasses import dataclass
from typing import Iterator, List, Tuple

import numpy as np
from tqdm import tqdm

from core.denoise import Backend, DenoiseOptions
from core.loop import denoise_batches
from dataloaders.sidd_mat import BENCHMARK_KEY, block_name, load_blocks
from utils.durable import atomic_path
from utils.image_io import quantize, write_image

SUBMIT_FILE = 'SubmitSrgb.mat'
IMAGES_DIR = 'images'


@dataclass
class SiddSubmission:
    path: str
    shape: List[int]  # of DenoisedBlocksSrgb: images, blocks, height, width, channels
    seconds_per_megapixel: float


def _blocks(noisy: np.ndarray) -> Iterator[Tuple[int, np.ndarray]]:
    """(flat block index, block as float32 in [0, 1]), converted one block at a time."""
    for index, block in enumerate(noisy.reshape((-1,) + noisy.shape[2:])):
        yield index, block.astype(np.float32) / 255.0


def write_submission(backend: Backend, benchmark_mat: str, submit_dir: str,
                     options: DenoiseOptions = DenoiseOptions(), batch_size: int = 1,
                     save_images: bool = False, progress: bool = True) -> SiddSubmission:
    """Denoise every block of ``benchmark_mat`` into ``submit_dir/SubmitSrgb.mat`` (and with
    ``save_images`` each block as PNG under ``submit_dir/images``)."""
    import scipy.io

    noisy = load_blocks(benchmark_mat, BENCHMARK_KEY)
    num_images, num_blocks = noisy.shape[:2]
    denoised = np.empty(noisy.shape, dtype=np.uint8)
    flat = denoised.reshape((-1,) + noisy.shape[2:])
    start = time.perf_counter()
    with tqdm(total=len(flat), desc='benchmark', unit='block', disable=not progress) as bar:
        for batch in denoise_batches(backend, _blocks(noisy), options, batch_size):
            for (index, _), restored in batch:
                flat[index] = quantize(restored)
            bar.update(len(batch))
    seconds = time.perf_counter() - start
    megapixels = flat.shape[0] * flat.shape[1] * flat.shape[2] / 1e6
    os.makedirs(submit_dir, exist_ok=True)
    path = os.path.join(submit_dir, SUBMIT_FILE)
    with atomic_path(path) as tmp_path:
        scipy.io.savemat(tmp_path, {'DenoisedBlocksSrgb': denoised, 'TimeMPSrgb': seconds / megapixels},
                         appendmat=False)
    if save_images:
        for i in range(num_images):
            for b in range(num_blocks):
                write_image(os.path.join(submit_dir, IMAGES_DIR, block_name(i, b) + '.png'), denoised[i, b])
    return SiddSubmission(path, list(denoised.shape), seconds / megapixels)
