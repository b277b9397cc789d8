"""dataloaders/LQGTRN_dataset.py: pairing, aligned crops, shared augmentation, readers, loaders."""
import os
import shutil

import cv2
import numpy as np
import pytest

from config import load_config
from dataloaders import LQGTRNDataset, create_dataset
from utils.image_io import ImageReadError, read_image, write_image
from utils.matlab_imresize import imresize

OFFSET = 20  # grey levels added to GT to make Noisy


def _write_pairs(root, names, size=64, lq='blocks', seed=0):
    """GT made of constant 4x4 blocks, Noisy = GT + OFFSET, LQ = one pixel per block (or none)."""
    rng = np.random.default_rng(seed)
    for name in names:
        small = rng.integers(0, 256 - OFFSET, size=(size // 4, size // 4, 3), dtype=np.uint8)
        gt = np.kron(small, np.ones((4, 4, 1), np.uint8))
        write_image(str(root / 'GT' / name), gt)
        write_image(str(root / 'Noisy' / name), gt + OFFSET)
        if lq == 'blocks':
            write_image(str(root / 'LQ' / name), small)
    return root


@pytest.fixture
def blocks_root(tmp_path):
    return _write_pairs(tmp_path, ['a.png', 'b.png', 'c.png'])


def test_crops_are_aligned_and_augmented_identically(blocks_root):
    """Any crop offset that is not a multiple of 4, or a flip/rotation applied to only one of
    GT/Noisy/LQ, would break these exact relations."""
    ds = LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=3)
    orientations = set()
    for index in range(40):
        s = ds[index]
        assert s['GT'].shape == s['Noisy'].shape == (3, 32, 32) and s['LQ'].shape == (3, 8, 8)
        assert all(s[k].dtype == np.float32 for k in ('GT', 'Noisy', 'LQ'))
        np.testing.assert_allclose(s['Noisy'] - s['GT'], OFFSET / 255, atol=1e-6)
        np.testing.assert_array_equal(np.kron(s['LQ'], np.ones((1, 4, 4), np.float32)), s['GT'])
        orientations.add(_orientation(s['GT'], str(blocks_root / 'GT' / s['name'])))
    assert len(orientations) > 4  # flips and transposes do happen


def _orientation(gt_crop, gt_path):
    """Which of the 8 flips/transposes of the source contains the crop (an aligned search)."""
    full = read_image(gt_path).transpose(2, 0, 1)
    for k, view in enumerate(_views(full)):
        for top in range(0, full.shape[1] - 31, 4):
            for left in range(0, full.shape[2] - 31, 4):
                if np.array_equal(view[:, top:top + 32, left:left + 32], gt_crop):
                    return k
    raise AssertionError('crop not found in any orientation of its source')


def _views(chw):
    for transpose in (False, True):
        base = chw.transpose(0, 2, 1) if transpose else chw
        for flip_h in (False, True):
            for flip_v in (False, True):
                view = base[:, :, ::-1] if flip_h else base
                yield view[:, ::-1] if flip_v else view


def test_same_index_same_sample_new_index_new_sample(blocks_root):
    ds = LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=7)
    first, again = ds[5], LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=7)[5]
    assert all(np.array_equal(first[k], again[k]) for k in ('GT', 'Noisy', 'LQ'))
    assert ds[5 + len(ds)]['name'] == first['name']  # global sample ids wrap around the files
    assert not all(np.array_equal(ds[i]['GT'], ds[i + len(ds)]['GT']) for i in range(len(ds)))
    other_seed = LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=8)
    assert not all(np.array_equal(ds[i]['GT'], other_seed[i]['GT']) for i in range(len(ds)))


def test_brightness_gain_is_one_per_sample_and_leaves_the_crops_unchanged(blocks_root):
    """brightness_max > 1 multiplies GT, Noisy and LQ of a sample by one gain in
    [1, brightness_max], clipped at white, after the same crop and flips; at 1 (the paper's
    setting) samples are exactly those of a dataset without the option."""
    plain = LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=3)
    off = LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=3, brightness_max=1.0)
    bright = LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, seed=3, brightness_max=2.0)
    gains = []
    for index in range(30):
        base, same, lit = plain[index], off[index], bright[index]
        assert all(np.array_equal(base[k], same[k]) for k in ('GT', 'Noisy', 'LQ'))
        sample_gains = []
        for key in ('GT', 'Noisy', 'LQ'):
            np.testing.assert_array_less(lit[key], 1 + 1e-6)
            unclipped = (lit[key] < 0.999) & (base[key] > 0.02)
            assert unclipped.any()
            ratio = lit[key][unclipped] / base[key][unclipped]
            assert np.ptp(ratio) < 1e-4, key  # one gain for the whole crop
            sample_gains.append(float(ratio.mean()))
            clipped = base[key] * sample_gains[-1] >= 1
            np.testing.assert_allclose(lit[key][clipped], 1.0)
        assert np.ptp(sample_gains) < 1e-4  # and the same for GT, Noisy and LQ
        gains.append(sample_gains[0])
    assert 1 <= min(gains) and max(gains) <= 2 + 1e-4 and np.ptp(gains) > 0.3
    with pytest.raises(ValueError, match='brightness_max must be >= 1'):
        LQGTRNDataset(str(blocks_root), 'train', scale=4, GT_size=32, brightness_max=0.5)


def test_lq_is_computed_from_the_whole_gt_when_lq_folder_is_absent(synthetic_sidd, tmp_path):
    root = tmp_path / 'train'
    shutil.copytree(synthetic_sidd / 'train', root)
    shutil.rmtree(root / 'LQ')
    ds = LQGTRNDataset(str(root), 'train', scale=4, GT_size=32, use_flip=False, use_rot=False, seed=1)
    for index in range(len(ds)):
        s = ds[index]
        full = read_image(str(root / 'GT' / s['name']))
        top, left = _locate(full, s['GT'].transpose(1, 2, 0))
        assert top % 4 == 0 and left % 4 == 0
        expected = imresize(full, 1 / 4)[top // 4:top // 4 + 8, left // 4:left // 4 + 8]
        np.testing.assert_allclose(s['LQ'].transpose(1, 2, 0), expected, atol=1e-6)


def _locate(full, crop):
    size = crop.shape[0]
    for top in range(full.shape[0] - size + 1):
        for left in range(full.shape[1] - size + 1):
            if np.array_equal(full[top:top + size, left:left + size], crop):
                return top, left
    raise AssertionError('crop not found in its source image')


def test_validation_modcrops_and_has_no_lq(tmp_path):
    for sub, value in (('GT', 10), ('Noisy', 30)):
        write_image(str(tmp_path / sub / 'x.png'), np.full((66, 71, 3), value, np.uint8))
    s = LQGTRNDataset(str(tmp_path), 'val', scale=4)[0]
    assert set(s) == {'GT', 'Noisy', 'name'} and s['GT'].shape == s['Noisy'].shape == (3, 64, 68)


def test_unmatched_names_are_listed(blocks_root):
    os.remove(blocks_root / 'Noisy' / 'b.png')
    write_image(str(blocks_root / 'Noisy' / 'zz.png'), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"(?s)\['b\.png'\].*\['zz\.png'\]"):
        LQGTRNDataset(str(blocks_root))


def test_incomplete_lq_folder_is_an_error(blocks_root):
    os.remove(blocks_root / 'LQ' / 'c.png')
    with pytest.raises(ValueError, match=r"(?s)c\.png.*generate_lq\.py"):
        LQGTRNDataset(str(blocks_root))


def test_missing_folder_small_image_and_wrong_lq_size_are_errors(tmp_path, blocks_root):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        LQGTRNDataset(str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match=r'a\.png is 64x64, smaller than GT_size 144'):
        LQGTRNDataset(str(blocks_root), GT_size=144)[0]
    write_image(str(blocks_root / 'LQ' / 'a.png'), np.zeros((10, 16, 3), np.uint8))
    with pytest.raises(ValueError, match=r'a\.png: LQ is 16x10, expected 16x16'):
        LQGTRNDataset(str(blocks_root), GT_size=32)[0]


def test_reads_16_bit_grayscale_and_alpha_and_names_broken_files(tmp_path):
    gt16 = (np.arange(64 * 64 * 3, dtype=np.uint32).reshape(64, 64, 3) * 7 % 65536).astype(np.uint16)
    write_image(str(tmp_path / 'GT' / 'p.png'), gt16)
    (tmp_path / 'Noisy').mkdir()
    gray = np.full((64, 64), 128, np.uint8)
    cv2.imwrite(str(tmp_path / 'Noisy' / 'p.png'), gray)
    rgba = np.dstack([np.full((64, 64, 3), 50, np.uint8), np.full((64, 64), 7, np.uint8)])
    cv2.imwrite(str(tmp_path / 'Noisy' / 'q.png'), rgba)
    write_image(str(tmp_path / 'GT' / 'q.png'), np.zeros((64, 64, 3), np.uint8))
    ds = LQGTRNDataset(str(tmp_path), 'val')
    p, q = ds[0], ds[1]
    np.testing.assert_allclose(p['GT'].transpose(1, 2, 0), gt16 / 65535.0, atol=1e-6)
    np.testing.assert_allclose(p['Noisy'], 128 / 255, atol=1e-6)
    assert q['Noisy'].shape == (3, 64, 64)
    np.testing.assert_allclose(q['Noisy'], 50 / 255, atol=1e-6)
    data = (tmp_path / 'GT' / 'q.png').read_bytes()
    (tmp_path / 'GT' / 'q.png').write_bytes(data[:len(data) // 3])
    with pytest.raises(ImageReadError, match=r'q\.png'):
        ds[1]


def test_create_dataset_from_config(synthetic_sidd):
    cfg = load_config(None, [f'datasets.train.dataroot={synthetic_sidd / "train"}',
                             f'datasets.val.dataroot={synthetic_sidd / "val"}', 'datasets.train.GT_size=32'])
    train = create_dataset(cfg.datasets.train, 'train', cfg.scale, seed=cfg.train.manual_seed)
    val = create_dataset(cfg.datasets.val, 'val', cfg.scale)
    assert (len(train), len(val)) == (4, 2)
    assert train[0]['GT'].shape == (3, 32, 32) and 'LQ' not in val[0]


def test_paddle_dataloader_workers_and_distributed_sampler(synthetic_sidd):
    from paddle.io import DataLoader, DistributedBatchSampler
    ds = LQGTRNDataset(str(synthetic_sidd / 'train'), 'train', scale=4, GT_size=32, seed=2)
    sampler = DistributedBatchSampler(ds, batch_size=2, shuffle=False, drop_last=True)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    for b, batch in enumerate(batches):
        assert list(batch['LQ'].shape) == [2, 3, 8, 8]
        for i in range(2):
            np.testing.assert_array_equal(batch['GT'].numpy()[i], ds[2 * b + i]['GT'])
            assert batch['name'][i] == ds[2 * b + i]['name']


def test_real_sidd_lq_folder_and_on_the_fly_lq_agree(sidd_mini_dir, tmp_path):
    root = sidd_mini_dir / 'train_mini'
    with_lq = LQGTRNDataset(str(root), 'train', seed=4)
    for sub in ('GT', 'Noisy'):
        os.symlink(root / sub, tmp_path / sub)
    on_the_fly = LQGTRNDataset(str(tmp_path), 'train', seed=4)
    for index in (0, 13):
        a, b = with_lq[index], on_the_fly[index]
        assert a['GT'].shape == (3, 144, 144) and a['LQ'].shape == (3, 36, 36)
        np.testing.assert_array_equal(a['GT'], b['GT'])
        np.testing.assert_allclose(a['LQ'], b['LQ'], atol=1 / 255 + 1e-6)
    val = LQGTRNDataset(str(sidd_mini_dir / 'val_mini'), 'val')
    assert val[0]['GT'].shape == (3, 256, 256)


@pytest.fixture
def clean_only(tmp_path):
    """GT/ only (four 64 x 72 photos), as for synthetic-noise training."""
    rng = np.random.default_rng(5)
    for k in range(4):
        write_image(str(tmp_path / 'GT' / f'{k}.png'), rng.integers(0, 256, (64, 72, 3)).astype(np.uint8))
    return tmp_path


def test_lqgtsn_adds_noise_after_the_crop_and_augmentation(clean_only):
    """The official order: crop and flip GT (and LQ), then Noisy = GT + N(0, sigma/255), with
    the draws top, left, three flips, then the noise, from default_rng([seed, index])."""
    from dataloaders.LQGTSN_dataset import LQGTSNDataset

    dataset = LQGTSNDataset(str(clean_only), 'train', scale=4, GT_size=32, seed=3, sigma=25)
    for index in (0, 5):
        sample = dataset[index]
        rng = np.random.default_rng([3, index])
        rng.integers(0, 2, size=2)  # the crop position (2 draws)
        rng.random(3)  # the flips
        expected_noise = rng.normal(0.0, 25 / 255, (32, 32, 3)).transpose(2, 0, 1)
        np.testing.assert_allclose(sample['Noisy'] - sample['GT'], expected_noise, atol=1e-6)
        assert sample['LQ'].shape == (3, 8, 8) and 'Noisy' in sample
        clean = LQGTRNDataset.crop_and_augment(dataset, np.random.default_rng([3, index]), '0.png',
                                               imresize(read_image(str(clean_only / 'GT' / sample['name'])), 0.25),
                                               [read_image(str(clean_only / 'GT' / sample['name']))])
        np.testing.assert_array_equal(sample['GT'], clean[1].transpose(2, 0, 1))


def test_lqgtsn_blind_noise_and_fixed_validation_copy(clean_only):
    from dataloaders.LQGTSN_dataset import LQGTSNDataset

    blind = LQGTSNDataset(str(clean_only), 'train', scale=4, GT_size=32, noise_mode='B')
    sigmas = [float(np.std(blind[i]['Noisy'] - blind[i]['GT'])) * 255 for i in range(8)]
    assert all(0 <= s <= 56 for s in sigmas) and max(sigmas) - min(sigmas) > 5
    val = LQGTSNDataset(str(clean_only), 'val', scale=4, sigma=15)
    first, again = val[1], val[1]
    assert first['GT'].shape == (3, 64, 72)
    np.testing.assert_array_equal(first['Noisy'], again['Noisy'])  # the same noisy copy each time
    assert 13 < np.std(first['Noisy'] - first['GT']) * 255 < 17
    with pytest.raises(ValueError, match='noise_mode'):
        LQGTSNDataset(str(clean_only), noise_mode='X')
