"""Write the SIDD validation blocks as PNG: TAR/{GT,Noisy}/{image}_{block}.PNG.

Reads ValidationGtBlocksSrgb.mat and ValidationNoisyBlocksSrgb.mat (uint8 RGB arrays
[images, blocks, 256, 256, 3] under keys of the same names; MATLAB v5 or v7.3/HDF5) from
--src_dir. The PNG files open as the same RGB pixels (40 x 32 = 1280 blocks for SIDD).
"""
import argparse
import os
import sys
from typing import Tuple

import numpy as np

from utils.image_io import write_image
from utils.parallel import add_num_workers_arg, map_with_progress

MAT_KEYS = {'GT': 'ValidationGtBlocksSrgb', 'Noisy': 'ValidationNoisyBlocksSrgb'}


def load_blocks(path: str, key: str) -> np.ndarray:
    """uint8 [images, blocks, H, W, 3] array ``key`` of a MATLAB v5 or v7.3 .mat file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'validation file not found: {path}')
    import h5py

    if h5py.is_hdf5(path):
        with h5py.File(path, 'r') as f:
            if key not in f:
                raise KeyError(f'{path} has no array {key!r}; found {sorted(f.keys())}')
            # MATLAB v7.3 stores arrays column-major: h5py reads them with the axes reversed.
            blocks = np.asarray(f[key][()]).transpose()
    else:
        import scipy.io

        content = scipy.io.loadmat(path, variable_names=[key])
        if key not in content:
            found = [name for name, *_ in scipy.io.whosmat(path)]
            raise KeyError(f'{path} has no array {key!r}; found {found}')
        blocks = content[key]
    if blocks.ndim != 5 or blocks.dtype != np.uint8 or blocks.shape[-1] != 3:
        raise ValueError(f'{path}: {key!r} is {blocks.dtype} with shape {blocks.shape}; expected uint8 '
                         '[images, blocks, height, width, 3]')
    return blocks


def write_image_blocks(task: Tuple[int, np.ndarray, np.ndarray, str]) -> int:
    """Write all blocks of one validation image; returns how many."""
    index, gt, noisy, tar_dir = task
    for b in range(gt.shape[0]):
        write_image(os.path.join(tar_dir, 'GT', f'{index}_{b}.PNG'), gt[b])
        write_image(os.path.join(tar_dir, 'Noisy', f'{index}_{b}.PNG'), noisy[b])
    return gt.shape[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--src_dir', default='.', help='folder holding the two validation .mat files')
    parser.add_argument('--tar_dir', default='data/SIDD/val', help='output folder; GT/ and Noisy/ are written in it')
    add_num_workers_arg(parser)
    parser.add_argument('--overwrite', action='store_true',
                        help='write into a non-empty --tar_dir, replacing files of the same names '
                             '(nothing else is deleted)')
    args = parser.parse_args(argv)
    if os.path.isdir(args.tar_dir) and os.listdir(args.tar_dir) and not args.overwrite:
        parser.error(f'target folder {args.tar_dir} is not empty; it is left untouched. '
                     'Choose another --tar_dir or pass --overwrite')
    try:
        gt, noisy = (load_blocks(os.path.join(args.src_dir, MAT_KEYS[k] + '.mat'), MAT_KEYS[k])
                     for k in ('GT', 'Noisy'))
    except (OSError, KeyError, ValueError, NotImplementedError) as err:
        sys.exit(f'error: {err.args[0] if isinstance(err, KeyError) else err}')
    if gt.shape != noisy.shape:
        sys.exit(f'error: GT blocks {gt.shape} and Noisy blocks {noisy.shape} differ in shape')

    for sub in ('GT', 'Noisy'):
        os.makedirs(os.path.join(args.tar_dir, sub), exist_ok=True)
    tasks = [(i, gt[i], noisy[i], args.tar_dir) for i in range(gt.shape[0])]
    total = sum(map_with_progress(write_image_blocks, tasks, args.num_workers, 'images'))
    print(f'wrote {total} GT/Noisy block pairs ({gt.shape[0]} images x {gt.shape[1]} blocks) to {args.tar_dir}')


if __name__ == '__main__':
    main()
