"""Evaluation on noisy/clean pairs, the way the SIDD benchmark scores results.

Outputs are clipped to [0, 1] and quantised to uint8 before PSNR (data range 255) and
SSIM (MATLAB reference) are computed against the uint8 ground truth. Pairs come from a
folder with ``GT/`` and ``Noisy/`` (files matched by name), from the SIDD validation
.mat files, or from any iterable of ``(name, noisy, gt)`` float HWC arrays in [0, 1].
"""
import csv
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from extract_valid_patches_sidd import MAT_KEYS, load_blocks
from networks.InvDN_model import InvNet
from utils.denoise import InvertiblePasses, denoise_array
from utils.image_io import ImageReadError, is_image_file, list_images, quantize, read_image, write_image
from utils.metrics import calculate_psnr, calculate_ssim

Pair = Tuple[str, np.ndarray, np.ndarray]


class PairList(Sequence):
    """A sized, lazily loaded sequence of ``(name, noisy, gt)`` float32 HWC pairs."""

    def __init__(self, names: List[str], load: Callable[[int], Tuple[np.ndarray, np.ndarray]]):
        self.names = names
        self._load = load

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Pair:
        if not 0 <= index < len(self.names):
            raise IndexError(index)
        return (self.names[index],) + tuple(self._load(index))


def folder_pairs(root: str) -> PairList:
    """Pairs from ``root/Noisy/<name>`` and ``root/GT/<name>`` (every name in both)."""
    folders = {sub: os.path.join(root, sub) for sub in ('Noisy', 'GT')}
    for sub, folder in folders.items():
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'{root} must contain GT/ and Noisy/ folders; {folder} not found')
    names = {sub: [os.path.basename(p) for p in list_images(folder)] for sub, folder in folders.items()}
    only_noisy = sorted(set(names['Noisy']) - set(names['GT']))
    only_gt = sorted(set(names['GT']) - set(names['Noisy']))
    if only_noisy or only_gt:
        raise ValueError(f'{root}: GT/ and Noisy/ must hold the same file names; only in Noisy/: '
                         f'{only_noisy[:5]}{" ..." if len(only_noisy) > 5 else ""}, only in GT/: '
                         f'{only_gt[:5]}{" ..." if len(only_gt) > 5 else ""}')
    if not names['Noisy']:
        raise ValueError(f'{root}: no images in Noisy/ and GT/')
    ordered = names['Noisy']

    def load(index: int) -> Tuple[np.ndarray, np.ndarray]:
        return tuple(read_image(os.path.join(folders[sub], ordered[index])) for sub in ('Noisy', 'GT'))

    return PairList(ordered, load)


def sidd_mat_pairs(mat_dir: str) -> PairList:
    """Pairs ``<image>_<block>`` from ValidationNoisyBlocksSrgb.mat / ValidationGtBlocksSrgb.mat."""
    blocks = {sub: load_blocks(os.path.join(mat_dir, key + '.mat'), key) for sub, key in MAT_KEYS.items()}
    if blocks['GT'].shape != blocks['Noisy'].shape:
        raise ValueError(f'{mat_dir}: GT blocks {blocks["GT"].shape} and Noisy blocks '
                         f'{blocks["Noisy"].shape} differ in shape')
    num_images, num_blocks = blocks['GT'].shape[:2]
    # Same names as extract_valid_patches_sidd.py gives the PNG blocks.
    names = [f'{i}_{b}' for i in range(num_images) for b in range(num_blocks)]

    def load(index: int) -> Tuple[np.ndarray, np.ndarray]:
        i, b = divmod(index, num_blocks)
        return tuple(blocks[sub][i, b].astype(np.float32) / 255.0 for sub in ('Noisy', 'GT'))

    return PairList(names, load)


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


def _batches(pairs: Iterable[Pair], batch_size: int) -> Iterable[List[Pair]]:
    """Consecutive pairs of equal shape, at most ``batch_size`` at a time."""
    batch: List[Pair] = []
    for pair in pairs:
        name, noisy, gt = pair
        if noisy.shape != gt.shape or noisy.ndim != 3:
            raise ValueError(f'{name}: noisy {noisy.shape} and GT {gt.shape} must be equal HxWx3 shapes')
        if batch and (len(batch) == batch_size or batch[0][1].shape != noisy.shape):
            yield batch
            batch = []
        batch.append(pair)
    if batch:
        yield batch


def output_name(name: str) -> str:
    """File name for a denoised result: the input's name, with .png added if it has none."""
    return name if is_image_file(name) else name + '.png'


def evaluate_pairs(model: Union[InvNet, InvertiblePasses], pairs: Iterable[Pair], mc_samples: int = 1,
                   self_ensemble: bool = False, crop_border: int = 0, seed: Optional[int] = None,
                   gaussian_scale: float = 1.0, progress: bool = True, save_dir: Optional[str] = None,
                   batch_size: int = 1, tile: Optional[int] = None) -> EvalResult:
    """Denoise every pair (``utils.denoise.denoise``) and score it; means over all pairs.

    Unreadable image files are listed in ``EvalResult.failed`` (and reported) while the
    other pairs are still evaluated.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    per_image: List[Dict[str, Union[str, float]]] = []
    failed: List[str] = []
    total = len(pairs) if hasattr(pairs, '__len__') else None
    with tqdm(total=total, desc='evaluate', unit='img', disable=not progress) as bar:
        for batch in _batches(_readable(pairs, failed), batch_size):
            noisy = np.stack([noisy for _, noisy, _ in batch])
            denoised = denoise_array(model, noisy, mc_samples=mc_samples, self_ensemble=self_ensemble,
                                     gaussian_scale=gaussian_scale, seed=seed, tile=tile)
            for (name, _, gt), out in zip(batch, denoised):
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
