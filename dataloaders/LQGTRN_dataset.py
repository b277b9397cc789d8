"""SIDD pairs for InvDN: clean GT, real Noisy and the low-resolution LQ target.

A dataroot holds ``GT/``, ``Noisy/`` and optionally ``LQ/`` with the same file names (the
official ``data/LQGTRN_dataset.py`` pairs by sorted position only; here names must match).
Training samples a ``GT_size`` crop at a position aligned to ``scale``, the matching
``GT_size / scale`` crop of LQ, and one random flip/rotation for all three (official
``util.augment``). LQ is read from ``LQ/`` when present, otherwise ``imresize(GT, 1/scale)`` of
the whole image, as the official code computes it on the fly. With ``brightness_max`` > 1
(not in the paper) the crops are brightened by one gain drawn log-uniformly from
[1, brightness_max] and clipped at white.

Randomness comes from ``np.random.default_rng([seed, index])`` and any non-negative index is
accepted (the file is ``index % len``), so a sampler yielding global sample ids
(``epoch * len + i``) gets fresh, reproducible augmentation each epoch, independent of worker
processes and of resuming.
"""
import math
import os
from typing import Any, Dict, List, Optional

import numpy as np
from paddle.io import Dataset

from config import paper_default
from dataloaders.pairs import paired_names
from utils.image_io import read_image
from utils.matlab_imresize import imresize

def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def augment(imgs: List[np.ndarray], hflip: bool, vflip: bool, rot90: bool) -> List[np.ndarray]:
    """The same horizontal flip, vertical flip and transpose on every HWC image."""
    out = []
    for img in imgs:
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if rot90:
            img = img.transpose(1, 0, 2)
        out.append(img)
    return out


def _to_chw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


class LQGTRNDataset(Dataset):
    """SIDD ``dataroot/{GT,Noisy[,LQ]}``: dicts of float32 CHW RGB arrays in [0, 1] and the name."""
    FOLDERS = ('GT', 'Noisy')  # paired by name

    def __init__(self, dataroot: str, phase: str = 'train', scale: int = paper_default('scale'),
                 GT_size: int = paper_default('datasets.train.GT_size'),
                 use_flip: bool = True, use_rot: bool = True, seed: int = 0,
                 brightness_max: float = 1.0):
        super().__init__()
        if phase not in ('train', 'val'):
            raise ValueError(f"phase must be 'train' or 'val', got {phase!r}")
        if phase == 'train' and (GT_size <= 0 or GT_size % scale):
            raise ValueError(f'GT_size ({GT_size}) must be a positive multiple of scale ({scale})')
        self.dataroot, self.phase, self.scale, self.GT_size = dataroot, phase, scale, GT_size
        self.use_flip, self.use_rot, self.seed = use_flip, use_rot, seed
        if not brightness_max >= 1:
            raise ValueError(f'brightness_max must be >= 1 (1: off), got {brightness_max}')
        self.brightness_max = brightness_max

        if not os.path.isdir(dataroot):
            raise FileNotFoundError(f'dataset folder not found: {dataroot} (expected GT/ and Noisy/ '
                                    'inside; see generate_patches_sidd.py and extract_valid_patches_sidd.py)')
        self.gt_dir, self.noisy_dir = os.path.join(dataroot, 'GT'), os.path.join(dataroot, 'Noisy')
        lq_dir = os.path.join(dataroot, 'LQ')
        self.lq_dir: Optional[str] = lq_dir if phase == 'train' and os.path.isdir(lq_dir) else None
        self.names = paired_names(dataroot, self.FOLDERS)
        if self.lq_dir is not None:
            try:
                paired_names(dataroot, ('GT', 'LQ'))
            except ValueError as err:
                raise ValueError(f'{err}\n  (complete LQ/ with generate_lq.py, or remove it to '
                                 'compute LQ on the fly)') from None

    def __len__(self) -> int:
        return len(self.names)

    def _read_pair(self, name: str):
        gt = read_image(os.path.join(self.gt_dir, name))
        noisy = read_image(os.path.join(self.noisy_dir, name))
        if gt.shape != noisy.shape:
            raise ValueError(f'{name}: GT {gt.shape[:2]} and Noisy {noisy.shape[:2]} differ in size '
                             f'({self.gt_dir}, {self.noisy_dir})')
        return gt, noisy

    def _read_lq(self, name: str, gt: np.ndarray) -> np.ndarray:
        h, w = gt.shape[:2]
        expected = (math.ceil(h / self.scale), math.ceil(w / self.scale))
        if self.lq_dir is None:
            return imresize(gt, 1 / self.scale)
        path = os.path.join(self.lq_dir, name)
        lq = read_image(path)
        if lq.shape[:2] != expected:
            raise ValueError(f'{path}: LQ is {lq.shape[1]}x{lq.shape[0]}, expected {expected[1]}x'
                             f'{expected[0]} (GT {w}x{h} / {self.scale}); regenerate it with generate_lq.py')
        return lq

    def _name(self, index: int) -> str:
        if int(index) < 0:
            raise IndexError(f'sample index must be non-negative, got {index}')
        return self.names[int(index) % len(self.names)]

    def crop_and_augment(self, rng: np.random.Generator, name: str, lq: np.ndarray,
                         images: List[np.ndarray]) -> List[np.ndarray]:
        """[lq crop] + the aligned GT_size crops of the full-size ``images``, with one
        flip/rotation for all (official ``util.augment``), then the brightness gain. Draws from
        ``rng``: top, left (in LQ pixels, so the GT crop starts at a multiple of scale), the
        three flips, then the gain (only when ``brightness_max`` > 1, so that the paper's
        setting draws what the official code draws)."""
        h, w = images[0].shape[:2]
        if h < self.GT_size or w < self.GT_size:
            raise ValueError(f'{os.path.join(self.gt_dir, name)} is {w}x{h}, smaller than GT_size '
                             f'{self.GT_size}')
        lq_size = self.GT_size // self.scale
        top = int(rng.integers(0, h // self.scale - lq_size + 1))
        left = int(rng.integers(0, w // self.scale - lq_size + 1))
        crops = [lq[top:top + lq_size, left:left + lq_size]]
        top, left = top * self.scale, left * self.scale
        crops += [image[top:top + self.GT_size, left:left + self.GT_size] for image in images]
        flips = rng.random(3) < 0.5
        hflip, vflip, rot90 = flips[0] and self.use_flip, flips[1] and self.use_rot, flips[2] and self.use_rot
        crops = augment(crops, hflip, vflip, rot90)
        if self.brightness_max > 1:
            # A brightened pair is the scene taken at a higher digital gain (the noise is amplified
            # with it); clipping is the saturated sensor. LQ, a linear downscale of GT, scales alike.
            gain = math.exp(rng.uniform(0.0, math.log(self.brightness_max)))
            crops = [np.minimum(crop * gain, 1.0) for crop in crops]
        return crops

    def __getitem__(self, index: int) -> Dict[str, Any]:
        name = self._name(index)
        gt, noisy = self._read_pair(name)
        if self.phase == 'val':
            return {'GT': _to_chw(modcrop(gt, self.scale)), 'Noisy': _to_chw(modcrop(noisy, self.scale)),
                    'name': name}
        rng = np.random.default_rng([self.seed, int(index)])
        lq, gt, noisy = self.crop_and_augment(rng, name, self._read_lq(name, gt), [gt, noisy])
        return {'LQ': _to_chw(lq), 'GT': _to_chw(gt), 'Noisy': _to_chw(noisy), 'name': name}
