"""Evaluation on noisy/clean pairs, the way the SIDD benchmark scores results.

Outputs are clipped to [0, 1] and quantised to uint8 before PSNR (data range 255) and
SSIM (MATLAB reference) are computed against the uint8 ground truth. Pairs come from
dataloaders (a ``GT/`` + ``Noisy/`` folder, the SIDD validation .mat files) or from any
iterable of ``(name, noisy, gt)`` float HWC arrays in [0, 1].
"""
import csv
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from dataloaders.pairs import Pair
from core.denoise import Backend, DenoiseOptions
from core.loop import denoise_batches
from utils.image_io import ImageReadError, is_image_file, quantize, write_image
from utils.metrics import calculate_psnr, calculate_ssim


@dataclass
class EvalResult:
    psnr: float
    ssim: float
    per_image: List[Dict[str, Union[str, float]]] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)  # why each unreadable pair was left out

    def save(self, csv_path: Optional[str] = None, json_path: Optional[str] = None) -> None:
        """Per-image rows as CSV (name, psnr, ssim) and everything as JSON."""
        if csv_path:
            with open(csv_path, 'w', newline='') as f:
                writer = csv.DictWriter(f, fieldnames=['name', 'psnr', 'ssim'])
                writer.writeheader()
                writer.writerows(self.per_image)
        if json_path:
            with open(json_path, 'w') as f:
                json.dump({'psnr': self.psnr, 'ssim': self.ssim, 'per_image': self.per_image,
                           'failed': self.failed}, f, indent=1)


def score(denoised: np.ndarray, gt: np.ndarray, crop_border: int = 0) -> Tuple[float, float]:
    """(PSNR, SSIM) of a float HWC result against float HWC ground truth, both in [0, 1]."""
    out8, gt8 = quantize(denoised, 8), quantize(gt, 8)
    return calculate_psnr(out8, gt8, crop_border), calculate_ssim(out8, gt8, crop_border)


def mean_lines(psnr: float, ssim: float) -> str:
    """The mean PSNR and SSIM as every script prints them: ``PSNR: 39.29`` and ``SSIM: 0.956``
    on two lines, the format of the earlier Paddle reproduction's README."""
    return f'PSNR: {psnr:.2f}\nSSIM: {ssim:.3f}'


def _readable(pairs: Iterable[Pair], failed: List[str]) -> Iterable[Pair]:
    """The pairs; an unreadable image of a lazily loaded sequence is recorded and skipped."""
    if not isinstance(pairs, Sequence):
        yield from pairs
        return
    for index in range(len(pairs)):
        try:
            yield pairs[index]
        except ImageReadError as err:
            failed.append(str(err))  # names the file


def _checked(pairs: Iterable[Pair]) -> Iterable[Pair]:
    """The pairs, each with noisy and GT of one HxWx3 shape."""
    for pair in pairs:
        name, noisy, gt = pair
        if noisy.shape != gt.shape or noisy.ndim != 3:
            raise ValueError(f'{name}: noisy {noisy.shape} and GT {gt.shape} must be equal HxWx3 shapes')
        yield pair


def output_name(name: str) -> str:
    """File name for a denoised result: the input's name, with .png added if it has none."""
    return name if is_image_file(name) else name + '.png'


def evaluate_pairs(backend: Backend, pairs: Iterable[Pair], options: DenoiseOptions = DenoiseOptions(),
                   crop_border: int = 0, progress: bool = True, save_dir: Optional[str] = None,
                   batch_size: int = 1) -> EvalResult:
    """Denoise every pair (core.denoise) and score it; means over all pairs.

    Unreadable image files are listed in ``EvalResult.failed`` (and reported) while the
    other pairs are still evaluated.
    """
    per_image: List[Dict[str, Union[str, float]]] = []
    failed: List[str] = []
    total = len(pairs) if hasattr(pairs, '__len__') else None
    with tqdm(total=total, desc='evaluate', unit='img', disable=not progress) as bar:
        for batch in denoise_batches(backend, _checked(_readable(pairs, failed)), options, batch_size):
            for (name, _, gt), out in batch:
                psnr, ssim = score(out, gt, crop_border)
                per_image.append({'name': name, 'psnr': psnr, 'ssim': ssim})
                if save_dir:
                    write_image(os.path.join(save_dir, output_name(name)), out)
            bar.update(len(per_image) + len(failed) - bar.n)
            bar.set_postfix(psnr=f'{np.mean([r["psnr"] for r in per_image]):.2f}')
    if not per_image:
        raise ValueError('no image pairs to evaluate' + (': ' + '; '.join(failed) if failed else ''))
    return EvalResult(psnr=float(np.mean([r['psnr'] for r in per_image])),
                      ssim=float(np.mean([r['ssim'] for r in per_image])), per_image=per_image,
                      failed=failed)
