"""The three preparation scripts end to end on self-made SIDD, and the synthetic generator."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import extract_valid_patches_sidd
from dataloaders.sidd_mat import load_blocks
import generate_lq
import generate_patches_sidd
from dataloaders import LQGTRNDataset
from tools.make_synthetic_sidd import (add_camera_noise, make_medium_tree, make_sidd_mini,
                                       make_validation_mat, srgb_to_linear, write_mat)
from utils.image_io import list_images, read_image, read_image_raw, write_image
from utils.matlab_imresize import imresize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def medium(tmp_path_factory):
    data = tmp_path_factory.mktemp('medium') / 'Data'
    make_medium_tree(str(data), num_scenes=2, height=96, width=128, seed=0)
    return data


def _patches(src, tar, *extra):
    generate_patches_sidd.main(['--input', str(src), '--result_dir', str(tar), '--ps', '48',
                                '--num_patches', '3', '--num_workers', '0', *extra])


@pytest.mark.parametrize('command', [['generate_patches_sidd.py'], ['generate_lq.py'],
                                     ['extract_valid_patches_sidd.py'], ['-m', 'tools.make_synthetic_sidd']])
def test_help_as_the_readme_runs_it(command):
    out = subprocess.run([sys.executable, *command, '--help'], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith('usage:'), out.stderr


def test_patches_lq_and_dataset_end_to_end(medium, tmp_path):
    tar = tmp_path / 'train'
    _patches(medium, tar)
    names = [os.path.basename(p) for p in list_images(str(tar / 'GT'))]
    assert names == sorted(f'{i}_{j}.PNG' for i in range(2) for j in range(3))
    gt_srcs = sorted(medium.glob('*/*_GT_SRGB_010.PNG'))
    for i, gt_src in enumerate(gt_srcs):
        full_gt = read_image_raw(str(gt_src))
        full_noisy = read_image_raw(str(gt_src).replace('_GT_', '_NOISY_'))
        for j in range(3):
            patch = read_image_raw(str(tar / 'GT' / f'{i}_{j}.PNG'))
            match = cv2.matchTemplate(full_gt, patch, cv2.TM_SQDIFF)
            top, left = np.unravel_index(np.argmin(match), match.shape)
            np.testing.assert_array_equal(full_gt[top:top + 48, left:left + 48], patch)
            noisy_patch = read_image_raw(str(tar / 'Noisy' / f'{i}_{j}.PNG'))
            np.testing.assert_array_equal(noisy_patch, full_noisy[top:top + 48, left:left + 48])

    generate_lq.main(['--input', str(tar), '--num_workers', '2'])
    for name in names:
        expected = np.round(imresize(read_image(str(tar / 'GT' / name)), 1 / 4) * 255)
        np.testing.assert_array_equal(read_image_raw(str(tar / 'LQ' / name)), np.clip(expected, 0, 255))
    sample = LQGTRNDataset(str(tar), 'train', GT_size=32)[0]
    assert sample['LQ'].shape == (3, 8, 8)


def test_patches_are_reproducible_and_parallel_runs_agree(medium, tmp_path):
    _patches(medium, tmp_path / 'a')
    _patches(medium, tmp_path / 'b', '--num_workers', '2')
    _patches(medium, tmp_path / 'c', '--seed', '1')
    a, b, c = (read_image_raw(str(tmp_path / d / 'Noisy' / '1_2.PNG')) for d in 'abc')
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_patches_refuse_a_non_empty_target_and_overwrite_keeps_other_files(medium, tmp_path, capsys):
    tar = tmp_path / 'train'
    (tar / 'GT').mkdir(parents=True)
    note = tar / 'notes.txt'
    note.write_text('mine')
    with pytest.raises(SystemExit) as exc:
        _patches(medium, tar)
    assert 'not empty' in str(exc.value.code) and '--overwrite' in str(exc.value.code)
    assert sorted(os.listdir(tar)) == ['GT', 'notes.txt'] and not os.listdir(tar / 'GT')
    (tar / 'LQ').mkdir()
    _patches(medium, tar, '--overwrite')
    assert note.read_text() == 'mine' and len(os.listdir(tar / 'GT')) == 6
    assert 'generate_lq.py' in capsys.readouterr().err  # the stale LQ/ is pointed out


def test_patches_report_bad_sources(medium, tmp_path):
    with pytest.raises(SystemExit, match='not found'):
        _patches(tmp_path / 'missing', tmp_path / 'o1')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit, match=r'no \*_GT_SRGB_\*'):
        _patches(tmp_path / 'empty', tmp_path / 'o2')

    unpaired = tmp_path / 'unpaired' / 'scene'
    write_image(str(unpaired / '0001_GT_SRGB_010.PNG'), np.zeros((64, 64, 3), np.uint8))
    write_image(str(unpaired / '0002_NOISY_SRGB_010.PNG'), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(SystemExit) as exc:
        _patches(unpaired.parent, tmp_path / 'o3')
    assert '0001_GT_SRGB_010.PNG' in str(exc.value.code) and '0002_NOISY_SRGB_010.PNG' in str(exc.value.code)

    small = tmp_path / 'small' / 'scene'
    write_image(str(small / '0001_GT_SRGB_010.PNG'), np.zeros((40, 64, 3), np.uint8))
    write_image(str(small / '0001_NOISY_SRGB_010.PNG'), np.zeros((40, 64, 3), np.uint8))
    with pytest.raises(SystemExit) as exc:
        _patches(small.parent, tmp_path / 'o4')
    assert '0001_GT_SRGB_010.PNG is 64x40, smaller than the patch size 48' in str(exc.value.code)


def test_generate_lq_keeps_existing_files_unless_overwrite(synthetic_sidd, tmp_path):
    data = tmp_path / 'train'
    gt = read_image_raw(str(synthetic_sidd / 'train' / 'GT' / '0_0.PNG'))
    write_image(str(data / 'GT' / 'x.png'), gt)
    sentinel = np.full((16, 16, 3), 7, np.uint8)
    write_image(str(data / 'LQ' / 'x.png'), sentinel)
    generate_lq.main(['--input', str(data), '--num_workers', '0'])
    np.testing.assert_array_equal(read_image_raw(str(data / 'LQ' / 'x.png')), sentinel)
    generate_lq.main(['--input', str(data), '--num_workers', '0', '--overwrite'])
    np.testing.assert_array_equal(read_image_raw(str(data / 'LQ' / 'x.png')),
                                  read_image_raw(str(synthetic_sidd / 'train' / 'LQ' / '0_0.PNG')))
    assert sorted(os.listdir(data / 'LQ')) == ['x.png']  # no temporary file left behind


def test_generate_lq_keeps_16_bit_depth(tmp_path):
    gt = (np.random.default_rng(0).random((32, 32, 3)) * 65535).astype(np.uint16)
    write_image(str(tmp_path / 'GT' / 'p.png'), gt)
    generate_lq.main(['--input', str(tmp_path), '--num_workers', '0'])
    lq = read_image_raw(str(tmp_path / 'LQ' / 'p.png'))
    assert lq.dtype == np.uint16 and lq.shape == (8, 8, 3)


@pytest.mark.parametrize('mat_format', ['v5', 'v7.3'])
def test_validation_mat_round_trip(tmp_path, mat_format):
    gt, noisy = make_validation_mat(str(tmp_path / 'mat'), num_images=2, num_blocks=3, size=32,
                                    mat_format=mat_format)
    extract_valid_patches_sidd.main(['--input', str(tmp_path / 'mat'), '--result_dir', str(tmp_path / 'val'),
                                     '--num_workers', '0'])
    for i in range(2):
        for b in range(3):
            np.testing.assert_array_equal(read_image_raw(str(tmp_path / 'val' / 'GT' / f'{i}_{b}.PNG')), gt[i, b])
            np.testing.assert_array_equal(read_image_raw(str(tmp_path / 'val' / 'Noisy' / f'{i}_{b}.PNG')),
                                          noisy[i, b])
    with pytest.raises(SystemExit):  # the target is now non-empty
        extract_valid_patches_sidd.main(['--input', str(tmp_path / 'mat'), '--result_dir', str(tmp_path / 'val')])


@pytest.mark.parametrize('mat_format', ['v5', 'v7.3'])
def test_validation_mat_errors_say_what_was_found(tmp_path, mat_format):
    blocks = np.zeros((1, 2, 8, 8, 3), np.uint8)
    path = str(tmp_path / 'ValidationGtBlocksSrgb.mat')
    write_mat(path, 'SomethingElse', blocks, mat_format)
    with pytest.raises(KeyError, match='SomethingElse'):
        load_blocks(path, 'ValidationGtBlocksSrgb')
    write_mat(path, 'ValidationGtBlocksSrgb', blocks[0], mat_format)
    with pytest.raises(ValueError, match=r'shape \(2, 8, 8, 3\)'):
        load_blocks(path, 'ValidationGtBlocksSrgb')
    write_mat(path, 'ValidationGtBlocksSrgb', blocks.astype(np.float32), mat_format)
    with pytest.raises(ValueError, match='float32'):
        load_blocks(path, 'ValidationGtBlocksSrgb')
    with pytest.raises(SystemExit) as exc:
        extract_valid_patches_sidd.main(['--input', str(tmp_path / 'none'), '--result_dir', str(tmp_path / 'v')])
    assert 'ValidationGtBlocksSrgb.mat' in str(exc.value.code) and not (tmp_path / 'v').exists()


def test_synthetic_noise_is_signal_dependent():
    """Shot noise makes the variance (in linear space) grow with the signal: not plain Gaussian."""
    rng = np.random.default_rng(0)
    dark, bright = np.full((128, 128, 3), 0.2, np.float32), np.full((128, 128, 3), 0.8, np.float32)
    shot, read = 0.01, 0.002
    var_dark = srgb_to_linear(add_camera_noise(dark, rng, shot, read).astype(np.float64)).var()
    var_bright = srgb_to_linear(add_camera_noise(bright, rng, shot, read).astype(np.float64)).var()
    mean_dark, mean_bright = srgb_to_linear(np.float64(0.2)), srgb_to_linear(np.float64(0.8))
    assert var_dark == pytest.approx(shot * mean_dark + read ** 2, rel=0.1)
    assert var_bright == pytest.approx(shot * mean_bright + read ** 2, rel=0.1)


def test_sidd_mini_layout(tmp_path):
    make_sidd_mini(str(tmp_path), train_pairs=2, train_size=64, val_pairs=1, val_size=32, seed=0)
    train = LQGTRNDataset(str(tmp_path / 'train_mini'), 'train', GT_size=32)
    val = LQGTRNDataset(str(tmp_path / 'val_mini'), 'val')
    assert (len(train), len(val)) == (2, 1) and val[0]['GT'].shape == (3, 32, 32)
    assert not (tmp_path / 'val_mini' / 'LQ').exists()
    psnr = 10 * np.log10(1 / np.mean((train[0]['GT'] - train[0]['Noisy']) ** 2))
    assert 15 < psnr < 45  # noisy, but still a photo


def test_split_val_mini_keeps_the_reported_blocks_apart_and_never_overwrites(tmp_path):
    from tools import split_val_mini

    for sub in ('GT', 'Noisy'):
        for k in range(5):
            write_image(str(tmp_path / 'val' / sub / f'0_{k}.PNG'), np.full((8, 8, 3), k * 10 + len(sub), np.uint8))
    folders = ['--val_mini', str(tmp_path / 'val'), '--select_dir', str(tmp_path / 'select'),
               '--report_dir', str(tmp_path / 'report')]
    split_val_mini.main(folders)
    split_val_mini.main(folders)  # a second run finds the same files and changes nothing
    for sub in ('GT', 'Noisy'):
        assert sorted(os.listdir(tmp_path / 'select' / sub)) == ['0_0.PNG', '0_1.PNG']
        assert sorted(os.listdir(tmp_path / 'report' / sub)) == ['0_2.PNG', '0_3.PNG', '0_4.PNG']
        assert (tmp_path / 'report' / sub / '0_3.PNG').read_bytes() == (tmp_path / 'val' / sub / '0_3.PNG').read_bytes()
    (tmp_path / 'report' / 'GT' / '0_4.PNG').write_bytes(b'edited')
    with pytest.raises(SystemExit, match='0_4.PNG exists and differs'):
        split_val_mini.main(folders)
    assert (tmp_path / 'report' / 'GT' / '0_4.PNG').read_bytes() == b'edited'
    with pytest.raises(SystemExit, match=r"does not have: \['9_9'\]"):
        split_val_mini.main(folders + ['--select', '9_9'])
