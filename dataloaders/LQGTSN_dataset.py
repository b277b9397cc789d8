"""Clean images with synthetic Gaussian noise (official ``data/LQGTSN_dataset.py``), the
counterpart of the real-noise pairs of dataloaders/LQGTRN_dataset.py."""
import os
from typing import Any, Dict

import numpy as np

from config import paper_default
from dataloaders.LQGTRN_dataset import LQGTRNDataset, _to_chw, modcrop
from utils.image_io import read_image


class LQGTSNDataset(LQGTRNDataset):
    """Clean images only (official ``LQGTSN_dataset.py``): ``dataroot/GT`` (and optional ``LQ/``),
    Noisy = GT + N(0, (sigma / 255)^2), not clipped.

    As in the official dataset the noise is drawn last, after cropping and augmentation (for
    validation: after the modcrop of the whole image), with ``noise_mode`` 'S' (a fixed
    ``sigma``, 0-255 scale) or 'B' (blind: a sigma drawn uniformly from [0, 55] per sample).
    Draws come from ``default_rng([seed, index])`` as for the crops: validation sees the same
    noisy copy at every validation, so its PSNR is comparable across runs.
    """
    FOLDERS = ('GT',)
    BLIND_SIGMA = (0.0, 55.0)  # official noiseL_B

    def __init__(self, dataroot: str, phase: str = 'train', scale: int = paper_default('scale'),
                 GT_size: int = paper_default('datasets.train.GT_size'), use_flip: bool = True,
                 use_rot: bool = True, seed: int = 0, noise_mode: str = 'S', sigma: float = 25.0,
                 brightness_max: float = 1.0):
        super().__init__(dataroot, phase, scale, GT_size, use_flip, use_rot, seed, brightness_max)
        if noise_mode not in ('S', 'B'):
            raise ValueError(f"noise_mode must be 'S' (fixed sigma) or 'B' (blind), got {noise_mode!r}")
        if noise_mode == 'S' and sigma < 0:
            raise ValueError(f'sigma must be >= 0 (0-255 scale), got {sigma}')
        self.noise_mode, self.sigma = noise_mode, sigma

    def draw_noise(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        sigma = rng.uniform(*self.BLIND_SIGMA) if self.noise_mode == 'B' else self.sigma
        return rng.normal(0.0, sigma / 255.0, shape)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        name = self._name(index)
        gt = read_image(os.path.join(self.gt_dir, name))
        rng = np.random.default_rng([self.seed, int(index)])
        sample: Dict[str, Any] = {'name': name}
        if self.phase == 'val':
            gt = modcrop(gt, self.scale)
        else:
            lq, gt = self.crop_and_augment(rng, name, self._read_lq(name, gt), [gt])
            sample['LQ'] = _to_chw(lq)
        noisy = gt + self.draw_noise(rng, gt.shape)
        sample.update(GT=_to_chw(gt), Noisy=_to_chw(noisy))
        return sample
