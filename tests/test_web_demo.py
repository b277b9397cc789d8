"""app.py, the web demo: its settings checks, and the page in a real browser (Debian's
Chromium driven by Playwright) giving predict.py's image and turning a bad file into a
message while the server goes on serving."""
import argparse
import os
import shutil

import numpy as np
import pytest

import predict
from tools.web_demo_browser import DemoServer, denoise_in_browser, missing
from utils.image_io import read_image_raw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISY = os.path.join(REPO, 'docs', 'demo', 'Noisy', 'sidd_val_0_0.png')
CLEAN = os.path.join(REPO, 'docs', 'demo', 'GT', 'sidd_val_0_0.png')


def test_only_the_examples_own_clean_image_is_dropped_for_a_new_photo(tmp_path):
    from apps.web_demo import is_example_clean

    other = tmp_path / 'clean.png'
    other.write_bytes(open(CLEAN, 'rb').read()[:-1] + b'x')
    assert is_example_clean(CLEAN) and not is_example_clean(str(other)) and not is_example_clean(None)


def test_page_settings_that_cannot_work_are_named(small_model_file, tmp_path):
    from apps.web_demo import Denoiser

    args = argparse.Namespace(tile_overlap=32, max_memory=1.5, max_megapixels=300, backend='dygraph',
                              precision='fp32', weights=small_model_file[1])
    denoiser = Denoiser(args, small_model_file[0], str(tmp_path))
    assert denoiser.options(4, True, 7, '256').tile == 256
    assert denoiser.options(1, False, 0, '0').tile is None
    for settings, message in (((1, False, -1, 'auto'), 'seed must be a whole number >= 0'),
                              ((1, False, 1.5, 'auto'), 'seed must be a whole number >= 0'),
                              ((1, False, 0, 'big'), "tile: expected 'auto', 0 or a tile size"),
                              ((1, False, 0, '66'), 'tile must be a multiple'),
                              ((1, False, 0, '32'), 'tile must be at least 64')):
        with pytest.raises(ValueError, match=message):
            denoiser.options(*settings)
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'\x89PNG not really')
    with pytest.raises(ValueError, match='broken.png'):
        denoiser.denoise(str(broken), None, denoiser.options(1, False, 0, 'auto'))


@pytest.mark.skipif(missing() is not None, reason=f'browser test: {missing()}')
def test_the_page_in_a_browser_gives_predicts_image_and_survives_a_bad_file(tmp_path):
    broken = tmp_path / 'not_a_photo.png'
    broken.write_bytes(b'this is not an image')
    big = tmp_path / 'big.png'
    big.write_bytes(os.urandom(3 * 2 ** 20))
    downloads = tmp_path / 'downloads'
    downloads.mkdir()
    with DemoServer(['--max_upload_mb', '1'], str(tmp_path / 'app.log')) as server:
        bad = denoise_in_browser(server.url, str(broken), None, str(downloads))
        assert 'not_a_photo.png' in bad.error and bad.result_file is None, server.output()
        too_big = denoise_in_browser(server.url, str(big), None, str(downloads))
        assert 'exceed the maximum allowed size of 1.0 Mb' in too_big.error and too_big.result_file is None
        good = denoise_in_browser(server.url, NOISY, CLEAN, str(downloads), str(tmp_path / 'page.png'),
                                  then_settings={'Seed (--seed)': -1})
        assert not good.error, good.error
        assert 'PSNR' in good.info and 'SSIM' in good.info and 'fp32' in good.info  # small jobs: fp32
        # A request that fails leaves nothing of the one before to download.
        assert 'seed must be a whole number >= 0' in good.then_error and good.stale_download is False
        assert 'Traceback' not in server.output()
    predict.main(['--input', NOISY, '--gt_dir', CLEAN, '--result_dir', str(tmp_path / 'predict')])
    expected = read_image_raw(str(tmp_path / 'predict' / 'sidd_val_0_0.png'))
    page = read_image_raw(good.result_file)
    assert page.dtype == expected.dtype == np.uint8 and page.shape == expected.shape
    assert np.abs(page.astype(int) - expected.astype(int)).max() <= 1
    assert not np.array_equal(page, read_image_raw(NOISY))
    assert (tmp_path / 'page.png').stat().st_size > 10000
    shutil.copy(tmp_path / 'page.png', tmp_path / 'screenshot_for_inspection.png')
