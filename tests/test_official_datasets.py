"""Our datasets and alignment steps against the official code. LQGTSN: ours against the
official ``data/LQGTSN_dataset.py`` with the same crop positions,
flips and noise draws (injected into the official code, not left to two RNGs), with and
without an LQ/ folder, fixed and blind noise. Needs an official checkout (INVDN_TORCH_REPO,
or ../InvDN beside the repository), torch and lmdb (the official module imports it)."""
import os
import random
from pathlib import Path

import numpy as np
import pytest

from dataloaders.LQGTSN_dataset import LQGTSNDataset
from utils.image_io import write_image
from utils.matlab_imresize import imresize

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = Path(os.environ.get('INVDN_TORCH_REPO', REPO.parent / 'InvDN'))
pytestmark = pytest.mark.skipif(not (OFFICIAL / 'codes' / 'data' / 'LQGTSN_dataset.py').is_file(),
                                reason=f'official InvDN checkout not found at {OFFICIAL} (set INVDN_TORCH_REPO)')


def draws(dataset: LQGTSNDataset, index: int, shape: tuple) -> dict:
    """Our dataset's draws for ``index``, in its order: top, left, three flips, [sigma], noise."""
    rng = np.random.default_rng([dataset.seed, index])
    h, w = shape
    lq_size = dataset.GT_size // dataset.scale
    top = int(rng.integers(0, h // dataset.scale - lq_size + 1))
    left = int(rng.integers(0, w // dataset.scale - lq_size + 1))
    flips = rng.random(3) < 0.5
    sigma = rng.uniform(*dataset.BLIND_SIGMA) if dataset.noise_mode == 'B' else dataset.sigma
    noise = rng.normal(0.0, sigma / 255.0, (dataset.GT_size, dataset.GT_size, 3))
    return {'top': top, 'left': left, 'flips': flips, 'sigma': sigma, 'noise': noise}


@pytest.mark.parametrize('with_lq, noise_mode', [(True, 'S'), (False, 'S'), (True, 'B')])
def test_lqgtsn_equals_the_official_dataset(tmp_path, monkeypatch, with_lq, noise_mode):
    pytest.importorskip('torch')
    pytest.importorskip('lmdb')
    from tools.align_with_torch import import_official

    official = import_official(str(OFFICIAL / 'codes'), 'data', ('LQGTSN_dataset',))
    rng = np.random.default_rng(0)
    for k in range(3):
        gt = rng.integers(0, 256, (48, 56, 3)).astype(np.uint8)
        write_image(str(tmp_path / 'GT' / f'{k}.png'), gt)
        if with_lq:
            write_image(str(tmp_path / 'LQ' / f'{k}.png'), imresize(gt.astype(np.float32) / 255, 0.25))
    ours = LQGTSNDataset(str(tmp_path), 'train', scale=4, GT_size=32, seed=7, noise_mode=noise_mode,
                         sigma=25)
    theirs = official.LQGTSN_dataset.LQGTSNDataset({
        'data_type': 'img', 'dataroot_GT': str(tmp_path / 'GT'),
        'dataroot_LQ': str(tmp_path / 'LQ') if with_lq else None, 'scale': 4, 'GT_size': 32,
        'phase': 'train', 'color': None, 'use_flip': True, 'use_rot': True,
        'noise_mode': noise_mode, 'sigma': 25})
    for index in range(3):
        d = draws(ours, index, (48, 56))
        crop_draws = iter([d['top'], d['left']])
        flip_draws = iter([0.0 if flip else 0.9 for flip in d['flips']])
        monkeypatch.setattr(random, 'randint', lambda a, b: next(crop_draws))
        monkeypatch.setattr(random, 'random', lambda: next(flip_draws))
        monkeypatch.setattr(np.random, 'uniform', lambda low, high: d['sigma'])
        monkeypatch.setattr(np.random, 'normal', lambda mean, std, shape: d['noise'])
        expected = theirs[index]
        monkeypatch.undo()
        got = ours[index]
        for key in ('GT', 'Noisy', 'LQ'):
            np.testing.assert_allclose(got[key], expected[key].numpy(), atol=1e-6 if with_lq else 2e-6,
                                       err_msg=f'{key}, sample {index}')


def test_remaining_alignment_steps_pass(tmp_path, sidd_mini_dir):
    """tools.align_steps: data reading, metrics, lr schedules and initialisation agree."""
    pytest.importorskip('torch')
    pytest.importorskip('lmdb')
    from tools.align_steps import main

    status = main(['--torch_repo', str(OFFICIAL), '--data_dir', str(sidd_mini_dir), '--samples', '4',
                   '--gt_size', '96', '--result_dir', str(tmp_path)])
    report = (tmp_path / 'report.md').read_text()
    assert status == 0, report
    for step in ('data_train', 'data_train_no_lq', 'data_val', 'data_mat', 'metrics',
                 'lr_training_1card', 'lr_training_4cards', 'init'):
        assert f'| {step} |' in report
    assert (tmp_path / 'data_train_paddle.npy').is_file() and (tmp_path / 'init_torch.npy').is_file()


def test_training_side_by_side_small(tmp_path, sidd_mini_dir):
    """tools.align_training, small: block_num [1, 1], 20 iterations, GT 32, same batches."""
    pytest.importorskip('torch')
    import json

    from tools.align_training import main

    status = main(['--torch_repo', str(OFFICIAL), '--data_dir', str(sidd_mini_dir), '--iters', '20',
                   '--batch_size', '2', '--gt_size', '32', '--block_num', '1', '1', '--val_freq', '10',
                   '--result_dir', str(tmp_path)])
    assert status == 0, (tmp_path / 'report.md').read_text()
    curves = json.loads((tmp_path / 'curves.json').read_text())
    assert len(curves['paddle']['total']) == len(curves['torch']['l_back_rec']) == 20
    assert [it for it, _ in curves['paddle']['val_psnr']] == [10, 20]
    assert (tmp_path / 'training_alignment.png').is_file()


def test_independent_streams_over_seeds_small(tmp_path, sidd_mini_dir, capsys):
    """--independent over 3 seeds, two processes at a time; a second call reuses the runs, and a
    folder of other settings is refused."""
    pytest.importorskip('torch')
    import json

    from tools.align_training import main

    flags = ['--torch_repo', str(OFFICIAL), '--data_dir', str(sidd_mini_dir), '--iters', '6', '--batch_size', '2',
             '--gt_size', '32', '--block_num', '1', '1', '--val_freq', '3', '--window', '3', '--independent',
             '--seed', '0', '1', '2', '--result_dir', str(tmp_path)]
    status = main(flags + ['--jobs', '2'])
    report = (tmp_path / 'report.md').read_text()
    assert status in (0, 1) and ('FAILED' in report) == (status == 1), report
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['judged'] and summary['settings']['seeds'] == [0, 1, 2]
    assert [t['what'] for t in summary['tests']] == ['log loss, iterations 1-3', 'log loss, iterations 4-6',
                                                     'val PSNR, iteration 3', 'val PSNR, iteration 6']
    first = {s: json.loads((tmp_path / f'seed_{s}' / 'curves.json').read_text()) for s in range(3)}
    assert all(len(c['paddle']['total']) == len(c['torch']['total']) == 6 for c in first.values())
    assert first[0]['paddle']['total'] != first[1]['paddle']['total']  # each seed its own run
    capsys.readouterr()
    assert main(flags) == status
    assert capsys.readouterr().out.count('reusing the finished run') == 3
    with pytest.raises(SystemExit, match='other settings'):
        main([f if f != '6' else '9' for f in flags])
