"""Shared fixtures: self-made SIDD-like folders, and the real SIDD_mini when it is present."""
import os
from pathlib import Path

import pytest

from tools.make_synthetic_sidd import make_patch_folders


@pytest.fixture(scope='session')
def synthetic_sidd(tmp_path_factory) -> Path:
    """``train/{GT,Noisy,LQ}`` (4 pairs) and ``val/{GT,Noisy}`` (2 pairs) of 64x64 noisy photos."""
    root = tmp_path_factory.mktemp('synthetic_sidd')
    make_patch_folders(str(root / 'train'), num_pairs=4, size=64, seed=0, with_lq=True)
    make_patch_folders(str(root / 'val'), num_pairs=2, size=64, seed=1, with_lq=False)
    return root


@pytest.fixture(scope='session')
def sidd_mini_dir() -> Path:
    """The real SIDD_mini (``train_mini``, ``val_mini``): ../shared/SIDD_mini or $SIDD_MINI_DIR."""
    default = Path(__file__).resolve().parents[2] / 'shared' / 'SIDD_mini'
    path = Path(os.environ.get('SIDD_MINI_DIR', default))
    if not (path / 'train_mini' / 'GT').is_dir() or not (path / 'val_mini' / 'GT').is_dir():
        pytest.skip(f'real SIDD_mini not found at {path} (set SIDD_MINI_DIR to its folder)')
    return path
