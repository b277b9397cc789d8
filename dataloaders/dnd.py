"""The Darmstadt Noise Dataset (DND) sRGB benchmark folder, read as the official code reads it.

``DND_DIR/info.mat`` (MATLAB v7.3, i.e. HDF5) holds ``info.boundingboxes``, a cell array with
one [boxes, 4] array per image; ``DND_DIR/images_srgb/%04d.mat`` holds ``InoisySRGB``, the
noisy sRGB image (float in [0, 1]). A box is ``[row1, col1, row2, col2]`` in MATLAB's 1-based,
inclusive convention: the crop is ``image[row1 - 1:row2, col1 - 1:col2]`` (official
``test_Real.DND_test``). The real benchmark has 50 images of 20 boxes of 512 x 512.
"""
import os
from typing import List, Tuple

import numpy as np

from utils.image_io import DEFAULT_MAX_PIXELS, megapixels

INFO_FILE = 'info.mat'
IMAGES_DIR = 'images_srgb'
IMAGE_KEY = 'InoisySRGB'


def image_path(dnd_dir: str, image: int) -> str:
    """``images_srgb/%04d.mat`` of image ``image`` (0-based; files are numbered from 1)."""
    return os.path.join(dnd_dir, IMAGES_DIR, '%04d.mat' % (image + 1))


def read_boxes(dnd_dir: str) -> List[np.ndarray]:
    """One int array [boxes, 4] (MATLAB row1, col1, row2, col2) per image, from info.mat."""
    import h5py

    path = os.path.join(dnd_dir, INFO_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: --dnd_dir must be the DND folder with info.mat '
                                f'and {IMAGES_DIR}/')
    if not h5py.is_hdf5(path):
        raise ValueError(f'{path} is not a MATLAB v7.3 (HDF5) file, as the DND info.mat is')
    with h5py.File(path, 'r') as f:
        if 'info' not in f or 'boundingboxes' not in f['info']:
            raise KeyError(f'{path} has no info.boundingboxes; found {sorted(f.keys())}')
        info = f['info']
        references = info['boundingboxes']
        boxes = []
        for image in range(references.shape[1]):
            # v7.3 stores arrays column-major: h5py reads [4, boxes], transposed back here.
            array = np.array(info[references[0][image]]).T
            if array.ndim != 2 or array.shape[1] != 4:
                raise ValueError(f'{path}: the boxes of image {image + 1} have shape {array.shape}; '
                                 'expected [boxes, 4]')
            boxes.append(array.astype(np.int64))
    return boxes


def read_noisy(dnd_dir: str, image: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The noisy sRGB image ``image`` (0-based) as float32 HWC, as the official code reads it;
    one whose declared size is above ``max_pixels`` is refused before it is read."""
    import h5py

    path = image_path(dnd_dir, image)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found (image {image + 1} of info.mat)')
    with h5py.File(path, 'r') as f:
        if IMAGE_KEY not in f:
            raise KeyError(f'{path} has no {IMAGE_KEY!r}; found {sorted(f.keys())}')
        shape = f[IMAGE_KEY].shape  # [3, W, H]: MATLAB's column-major order
        if len(shape) == 3 and shape[1] * shape[2] > max_pixels:
            raise ValueError(f'{path}: {IMAGE_KEY} is {shape[1]} x {shape[2]} = '
                             f'{megapixels(shape[1] * shape[2])}, above the limit of '
                             f'{megapixels(max_pixels)} (raise it with --max_megapixels)')
        noisy = np.float32(np.array(f[IMAGE_KEY]).T)
    if noisy.ndim != 3 or noisy.shape[2] != 3:
        raise ValueError(f'{path}: {IMAGE_KEY} has shape {noisy.shape}; expected [H, W, 3]')
    return noisy


def box_slices(box: np.ndarray) -> Tuple[slice, slice]:
    """Rows and columns of a MATLAB 1-based inclusive box [row1, col1, row2, col2]."""
    return slice(int(box[0]) - 1, int(box[2])), slice(int(box[1]) - 1, int(box[3]))


def crop(noisy: np.ndarray, box: np.ndarray, source: str) -> np.ndarray:
    """The box's crop of ``noisy``; a box outside the image is an error naming ``source``."""
    rows, cols = box_slices(box)
    height, width = noisy.shape[:2]
    if not (0 <= rows.start < rows.stop <= height and 0 <= cols.start < cols.stop <= width):
        raise ValueError(f'{source}: box {[int(v) for v in box]} (MATLAB row1, col1, row2, col2) lies '
                         f'outside the {height}x{width} image')
    return noisy[rows, cols]
