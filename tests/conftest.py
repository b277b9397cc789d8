"""Shared fixtures: self-made SIDD-like folders, the real SIDD_mini when it is present, and
the official state-dict layout."""
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from tools.make_synthetic_sidd import make_patch_folders


@pytest.fixture(scope='session', autouse=True)
def export_cache(tmp_path_factory) -> Path:
    """The exports the scripts cache (deploy.cache) go to a folder of this test session, also
    for the scripts the tests run as subprocesses, never to the user's cache."""
    folder = tmp_path_factory.mktemp('export_cache')
    os.environ['INVDN_EXPORT_CACHE'] = str(folder)
    return folder


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


def _official_state_dict_shapes(block_num: Sequence[int] = (8, 8), channel_in: int = 3,
                               split: int = 3, feature: int = 64) -> Dict[str, List[int]]:
    """Names and shapes of the official ``InvNet.state_dict()``, from the architecture rule:
    per stage a Haar op (a [4C, 1, 2, 2] filter) then block_num couplings, each with
    subnets F (C'-3 -> 3), G and H (3 -> C'-3) of three 3x3 convs (cin->64, 64->64, 64+cin->cout)."""
    shapes = OrderedDict()
    index, channels = 0, channel_in
    for blocks in block_num:
        shapes[f'operations.{index}.haar_weights'] = [4 * channels, 1, 2, 2]
        index += 1
        channels *= 4
        for _ in range(blocks):
            rest = channels - split
            for name, cin, cout in (('F', rest, split), ('G', split, rest), ('H', split, rest)):
                for conv, (i, o) in (('conv1', (cin, feature)), ('conv2', (feature, feature)),
                                     ('conv3', (feature + cin, cout))):
                    shapes[f'operations.{index}.{name}.{conv}.weight'] = [o, i, 3, 3]
                    shapes[f'operations.{index}.{name}.{conv}.bias'] = [o]
            index += 1
    return shapes


@pytest.fixture(scope='session')
def official_state_dict_shapes():
    """``f(block_num) -> {name: shape}`` of the official ``InvNet.state_dict()``."""
    return _official_state_dict_shapes


@pytest.fixture(scope='session')
def small_model_file(tmp_path_factory):
    """A block_num [1, 1] model and a training-style checkpoint of it that records its
    architecture (as the trainer saves it)."""
    import paddle

    from networks import build_invnet

    paddle.seed(0)
    model = build_invnet(block_num=[1, 1])
    model.eval()
    path = tmp_path_factory.mktemp('weights') / 'small.pdparams'
    paddle.save({'state_dict': model.state_dict(),
                 'config': {'network_G': {'in_nc': 3, 'out_nc': 3, 'block_num': [1, 1], 'scale': 4}}},
                str(path))
    return model, str(path)
