"""test_denoising_dnd.py on a DND-like folder: box convention, submission files, bundle, resume, errors."""
import os

import numpy as np
import pytest
import scipy.io

import test_denoising_dnd
from dataloaders.dnd import box_slices, crop, read_boxes, read_noisy
from core.denoise import DenoiseOptions, DygraphBackend, denoise_array
from tools.make_synthetic_sidd import make_dnd, write_mat


@pytest.fixture(scope='module')
def small_weights(small_model_file):
    return small_model_file


def run(dnd_dir, result_dir, weights, *extra):
    test_denoising_dnd.main(['--dnd_dir', str(dnd_dir), '--result_dir', str(result_dir),
                             '--weights', weights, '--backend', 'dygraph', '--progress', 'False',
                             '--seed', '3', '--self_ensemble', 'False', *extra])


def test_matlab_box_convention_on_a_hand_made_box():
    """[row1, col1, row2, col2] = [2, 3, 5, 7], 1-based and inclusive: rows 2..5, columns 3..7."""
    image = np.arange(8 * 9 * 3, dtype=np.float32).reshape(8, 9, 3)
    rows, cols = box_slices(np.array([2, 3, 5, 7]))
    assert (rows, cols) == (slice(1, 5), slice(2, 7))
    patch = crop(image, np.array([2, 3, 5, 7]), 'hand.mat')
    assert patch.shape == (4, 5, 3)
    np.testing.assert_array_equal(patch[0, 0], image[1, 2])  # MATLAB (2, 3)
    np.testing.assert_array_equal(patch[-1, -1], image[4, 6])  # MATLAB (5, 7)
    with pytest.raises(ValueError, match=r'hand\.mat: box \[5, 3, 9, 7\].*outside the 8x9 image'):
        crop(image, np.array([5, 3, 9, 7]), 'hand.mat')


def test_submission_and_bundle_read_back(small_weights, tmp_path):
    model, weights = small_weights
    written_boxes = make_dnd(str(tmp_path / 'dnd'), num_images=2, num_boxes=3)
    run(tmp_path / 'dnd', tmp_path / 'out', weights, '--save_images')
    backend = DygraphBackend(model)
    for image, boxes in enumerate(written_boxes):
        noisy = read_noisy(str(tmp_path / 'dnd'), image)
        bundled = scipy.io.loadmat(str(tmp_path / 'out' / 'bundled' / ('%04d.mat' % (image + 1))))
        assert bundled['Idenoised'].shape == (1, 3) and not bundled['israw'].item()
        assert str(bundled['eval_version'][0]) == '1.0'
        for k, box in enumerate(boxes):
            rows, cols = slice(int(box[0]) - 1, int(box[2])), slice(int(box[1]) - 1, int(box[3]))
            expected = np.clip(denoise_array(backend, noisy[rows, cols], DenoiseOptions(seed=3)), 0, 1)
            got = bundled['Idenoised'][0, k]
            assert got.dtype == np.float32 and got.shape == expected.shape == (32, 32, 3)
            np.testing.assert_allclose(got, expected, atol=1e-6)
            single = scipy.io.loadmat(str(tmp_path / 'out' / 'Submit' / ('%04d_%02d.mat' % (image + 1, k + 1))))
            np.testing.assert_array_equal(single['Idenoised_crop'], got)
            assert (tmp_path / 'out' / 'Images' / ('%04d_%02d.png' % (image + 1, k + 1))).is_file()


def test_resume_denoises_only_missing_boxes_and_no_overwrite_without_flag(small_weights, tmp_path, capsys):
    _, weights = small_weights
    make_dnd(str(tmp_path / 'dnd'), num_images=2, num_boxes=3)
    run(tmp_path / 'dnd', tmp_path / 'out', weights)
    kept = tmp_path / 'out' / 'Submit' / '0001_01.mat'
    stamp = os.stat(kept).st_mtime_ns
    os.remove(tmp_path / 'out' / 'Submit' / '0002_03.mat')  # as if the run had stopped there
    with pytest.raises(SystemExit, match='--resume'):
        run(tmp_path / 'dnd', tmp_path / 'out', weights)
    capsys.readouterr()
    run(tmp_path / 'dnd', tmp_path / 'out', weights, '--resume')
    assert 'denoised 1 of 6 boxes (5 kept' in capsys.readouterr().out
    assert os.stat(kept).st_mtime_ns == stamp
    assert (tmp_path / 'out' / 'Submit' / '0002_03.mat').is_file()


def test_bad_dnd_folders_are_named(small_weights, tmp_path):
    _, weights = small_weights
    with pytest.raises(SystemExit, match=r'info\.mat not found'):
        run(tmp_path / 'nothing', tmp_path / 'o1', weights)
    boxes = make_dnd(str(tmp_path / 'dnd'), num_images=1, num_boxes=2)
    write_mat(str(tmp_path / 'dnd' / 'images_srgb' / '0001.mat'), 'SomethingElse',
              np.zeros((96, 128, 3)), 'v7.3')
    with pytest.raises(SystemExit, match=r"0001\.mat has no 'InoisySRGB'"):
        run(tmp_path / 'dnd', tmp_path / 'o2', weights)
    make_dnd(str(tmp_path / 'small'), num_images=1, num_boxes=2)
    write_mat(str(tmp_path / 'small' / 'images_srgb' / '0001.mat'), 'InoisySRGB',
              np.zeros((40, 40, 3)), 'v7.3')  # smaller than the boxes drawn for 96 x 128
    with pytest.raises(SystemExit, match=r'0001\.mat: box .* outside the 40x40 image'):
        run(tmp_path / 'small', tmp_path / 'o3', weights)
    assert len(read_boxes(str(tmp_path / 'dnd'))[0]) == len(boxes[0]) == 2


def test_a_dnd_image_above_the_pixel_limit_is_refused_before_it_is_read(small_weights, tmp_path):
    _, weights = small_weights
    make_dnd(str(tmp_path / 'dnd'), num_images=1, num_boxes=2)  # 96 x 128 images
    with pytest.raises(SystemExit,
                       match=r'0001\.mat: InoisySRGB is 128 x 96 = 0\.0123 MP, above the limit of 0\.01 MP'):
        run(tmp_path / 'dnd', tmp_path / 'out', weights, '--max_megapixels', '0.01')
