"""Noisy/clean image pairs: files paired by name, read lazily.

The one pairing of folders in the project: the training dataset and evaluation pair
``GT/<name>`` with ``Noisy/<name>`` (and ``LQ/<name>``) here. (predict.py and infer.py take
any folder of noisy images and look up each one's GT by the same name, when a GT folder is
given: apps.images.gt_path.)
The official ``LQGTRN_dataset.py`` pairs by sorted position, where one missing file would
shift every later pair; a name without its partner is an error instead.
"""
import os
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from utils.image_io import DEFAULT_MAX_PIXELS, list_images, read_image

Pair = Tuple[str, np.ndarray, np.ndarray]
_EXAMPLES = 5  # unmatched names listed in a pairing error


def image_names(folder: str) -> List[str]:
    """Sorted file names of the images in ``folder``."""
    return [os.path.basename(p) for p in list_images(folder)]


def paired_names(root: str, subfolders: Sequence[str]) -> List[str]:
    """Names present in every ``root/<subfolder>``, in sorted order.

    A missing subfolder, an empty one or a name missing from any of them is an error that
    names the folders and lists the unmatched files.
    """
    names: Dict[str, List[str]] = {}
    for sub in subfolders:
        folder = os.path.join(root, sub)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'{root} must contain {" and ".join(s + "/" for s in subfolders)} '
                                    f'folders; {folder} not found')
        names[sub] = image_names(folder)
    reference = subfolders[0]
    if not names[reference]:
        raise ValueError(f'no images in {os.path.join(root, reference)}')
    for sub in subfolders[1:]:
        only_ref = sorted(set(names[reference]) - set(names[sub]))
        only_sub = sorted(set(names[sub]) - set(names[reference]))
        if only_ref or only_sub:
            lines = [f'{root}: {reference}/ and {sub}/ must hold the same file names;']
            for side, items in ((reference, only_ref), (sub, only_sub)):
                if items:
                    more = f' (+{len(items) - _EXAMPLES} more)' if len(items) > _EXAMPLES else ''
                    lines.append(f'  only in {side}/: {items[:_EXAMPLES]}{more}')
            raise ValueError('\n'.join(lines))
    return names[reference]


class PairList(Sequence):
    """A sized, lazily loaded sequence of ``(name, noisy, gt)`` float32 HWC pairs in [0, 1]."""

    def __init__(self, names: List[str], load: Callable[[int], Tuple[np.ndarray, np.ndarray]]):
        self.names = names
        self._load = load

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Pair:
        if not 0 <= index < len(self.names):
            raise IndexError(index)
        return (self.names[index],) + tuple(self._load(index))


def folder_pairs(root: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> PairList:
    """Pairs from ``root/Noisy/<name>`` and ``root/GT/<name>`` (every name in both); an image
    declaring more than ``max_pixels`` is refused from its header when it is read."""
    names = paired_names(root, ('GT', 'Noisy'))

    def load(index: int) -> Tuple[np.ndarray, np.ndarray]:
        return tuple(read_image(os.path.join(root, sub, names[index]), max_pixels)
                     for sub in ('Noisy', 'GT'))

    return PairList(names, load)
