"""Generating noisy images from noisy ones: the loop of generate_noise.py.

The job is planned and locked as predict.py's (apps.images.plan_image_job); each readable
image gets ``num_samples`` new noisy versions from core.noise_generation, written as
``<stem>_<k>.png`` in its bit depth with its alpha. With a GT folder every sample is scored
against the image's real noise: AKLD (DANet's, lower is closer) and the correlation of the
generated noise with the real noise (1: a copy). An unreadable image, or a sample that is
not finite, is reported by name and the others are still processed.
"""
import os
from typing import List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from apps.images import FilesReport, like_photo, read_clean, read_files, write_like
from core.noise_generation import LatentBackend, NoiseOptions, generate_array
from utils.durable import DiskFullError
from utils.image_io import DEFAULT_MAX_PIXELS, ImageReadError, quantize, to_float
from utils.metrics import calculate_akld, noise_correlation


def sample_outputs(path: str, result_dir: str, num_samples: int) -> List[str]:
    """The files ``generate_files`` writes for the image ``path``: ``<stem>_<k>.png``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return [os.path.join(result_dir, f'{stem}_{k}.png') for k in range(num_samples)]


def score_lines(akld: float, correlation: float) -> str:
    """The mean scores of generated noise, one per line."""
    return (f'AKLD: {akld:.4f} (lower: closer to the real noise)\n'
            f'noise correlation: {correlation:.3f} (1: a copy of the real noise, 0: a new draw)')


def generate_files(backend: LatentBackend, files: Sequence[str], result_dir: str,
                   options: NoiseOptions, num_samples: int, gt_dir: Optional[str] = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True) -> FilesReport:
    """Write ``num_samples`` noisy versions of each of ``files`` into ``result_dir``; see the
    module docstring. ``report.scores`` maps '<stem>_<k>' to (AKLD, correlation)."""
    report = FilesReport()
    bar = tqdm(total=len(files), desc='generate', unit='img', disable=not progress)
    for name, pixels, photo, path in read_files(files, max_pixels, report):
        try:
            clean = read_clean(gt_dir, name, pixels.shape, max_pixels)
        except (ImageReadError, ValueError) as err:
            report.failures.append(f'{name}: {err}')
            clean = None
        if clean is not None:
            clean, real = quantize(clean, 8), quantize(to_float(pixels), 8)
        written = 0
        for k, output in enumerate(sample_outputs(path, result_dir, num_samples)):
            sample = like_photo(generate_array(backend, pixels, options, sample=k), photo)
            if not np.isfinite(sample).all():
                report.failures.append(f'{name}: sample {k} holds NaN or Inf and was not written')
                continue
            try:
                write_like(output, sample, photo)
            except DiskFullError as err:  # every later write would fail too: stop here
                report.failures.append(f'{name}: {err}')
                bar.close()
                return report
            written += 1
            if clean is not None:
                generated = quantize(sample, 8)
                scores = (calculate_akld(generated, real, clean), noise_correlation(generated, real, clean))
                report.scores[os.path.splitext(os.path.basename(output))[0]] = scores
                bar.write(f'{os.path.basename(output)}: AKLD {scores[0]:.4f}, noise correlation {scores[1]:.3f}')
        if written == num_samples:
            report.written += 1
        bar.update(1)
    bar.update(len(files) - bar.n)
    bar.close()
    return report

