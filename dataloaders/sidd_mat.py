"""The SIDD validation and benchmark blocks stored in MATLAB files (v5 or v7.3/HDF5)."""
import os

import numpy as np

from dataloaders.pairs import PairList

MAT_KEYS = {'GT': 'ValidationGtBlocksSrgb', 'Noisy': 'ValidationNoisyBlocksSrgb'}
BENCHMARK_KEY = 'BenchmarkNoisyBlocksSrgb'


def load_blocks(path: str, key: str) -> np.ndarray:
    """uint8 [images, blocks, H, W, 3] array ``key`` of a MATLAB v5 or v7.3 .mat file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'SIDD .mat file not found: {path}')
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


def block_name(image: int, block: int) -> str:
    """``<image>_<block>``: the name of a block, as extract_valid_patches_sidd.py writes it."""
    return f'{image}_{block}'


def sidd_mat_pairs(mat_dir: str) -> PairList:
    """Pairs ``<image>_<block>`` from ValidationNoisyBlocksSrgb.mat / ValidationGtBlocksSrgb.mat."""
    blocks = {sub: load_blocks(os.path.join(mat_dir, key + '.mat'), key) for sub, key in MAT_KEYS.items()}
    if blocks['GT'].shape != blocks['Noisy'].shape:
        raise ValueError(f'{mat_dir}: GT blocks {blocks["GT"].shape} and Noisy blocks '
                         f'{blocks["Noisy"].shape} differ in shape')
    num_images, num_blocks = blocks['GT'].shape[:2]
    names = [block_name(i, b) for i in range(num_images) for b in range(num_blocks)]

    def load(index: int):
        i, b = divmod(index, num_blocks)
        return tuple(blocks[sub][i, b].astype(np.float32) / 255.0 for sub in ('Noisy', 'GT'))

    return PairList(names, load)
