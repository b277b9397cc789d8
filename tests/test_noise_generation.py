"""generate_noise.py and core.noise_generation: the invertibility oracle, the manipulations of
the latent, the AKLD and correlation scores, and the script as a user meets it."""
import math
import os

import numpy as np
import pytest

import generate_noise
from core.denoise import DygraphBackend
from core.noise_generation import NoiseOptions, _local_rms, generate_array, new_latent
from utils.image_io import read_image, read_image_raw, write_image
from utils.metrics import calculate_akld, noise_correlation


@pytest.fixture
def backend(small_model_file):
    return DygraphBackend(small_model_file[0])


@pytest.fixture
def noisy_pairs(tmp_path):
    """Noisy/ and GT/ folders of two 40 x 52 images (not multiples of the network's 4)."""
    rng = np.random.default_rng(3)
    for name in ('a.png', 'b.png'):
        clean = rng.integers(40, 200, (40, 52, 3)).astype(np.float64)
        write_image(str(tmp_path / 'GT' / name), clean.astype(np.uint8))
        noisy = np.clip(np.round(clean + rng.normal(0, 12, clean.shape)), 0, 255)
        write_image(str(tmp_path / 'Noisy' / name), noisy.astype(np.uint8))
    return tmp_path


@pytest.mark.parametrize('mode', ['perturb', 'resample', 'residual'])
@pytest.mark.parametrize('tile', [None, 64])
def test_epsilon_zero_gives_the_input_back(backend, mode, tile):
    """The invertibility oracle: with the latent unchanged the reverse pass returns the input
    to float rounding, whole or tiled, for 8-bit and float images of any size."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (90, 100, 3)).astype(np.uint8)
    for image, scale in ((pixels, 255.0), (pixels / np.float32(255), 1.0)):
        out = generate_array(backend, image, NoiseOptions(mode=mode, epsilon=0.0, tile=tile, tile_overlap=16))
        assert out.shape == image.shape and out.dtype == np.float32
        assert np.abs(out * 255 - image * (255 / scale)).max() < 1e-2  # float rounding only


def test_samples_are_seeded_new_and_grow_with_epsilon(backend):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    options = NoiseOptions(mode='perturb', epsilon=0.05, seed=3)
    first, again = generate_array(backend, image, options, 0), generate_array(backend, image, options, 0)
    np.testing.assert_array_equal(first, again)
    assert np.abs(generate_array(backend, image, options, 1) - first).max() > 1e-3
    other_seed = NoiseOptions(mode='perturb', epsilon=0.05, seed=4)
    assert np.abs(generate_array(backend, image, other_seed, 0) - first).max() > 1e-3
    change = [np.abs(generate_array(backend, image, NoiseOptions(epsilon=e), 0) - image / 255).mean()
              for e in (0.01, 0.1)]
    assert 0 < change[0] < change[1]


def test_latent_manipulations_keep_what_they_promise():
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((1, 4, 48, 48)) * [[[[0.2]], [[0.5]], [[1.0]], [[2.0]]]] + 0.7).astype(np.float32)
    n = rng.standard_normal(z.shape).astype(np.float32)
    np.testing.assert_allclose(new_latent(z, n, 'perturb', 0.3), z + 0.3 * n, rtol=1e-6)
    for mode in ('resample', 'residual'):
        np.testing.assert_allclose(new_latent(z, n, mode, 0.0, np.zeros_like(z)), z, atol=1e-6)
    fresh = new_latent(z, n, 'resample', 1.0)  # z's channel statistics, none of its draw
    np.testing.assert_allclose(fresh.mean(axis=(2, 3)), z.mean(axis=(2, 3)), atol=0.1)
    np.testing.assert_allclose(fresh.std(axis=(2, 3)), z.std(axis=(2, 3)), rtol=0.1)
    assert abs(np.corrcoef((fresh - z.mean()).ravel(), (z - z.mean()).ravel())[0, 1]) < 0.2
    half = new_latent(z, n, 'resample', 0.6)  # variance kept while blending
    np.testing.assert_allclose(half.std(axis=(2, 3)), z.std(axis=(2, 3)), rtol=0.1)
    # residual: the denoised latent plus a new residual with the old one's local strength
    denoised = np.zeros_like(z)
    denoised[..., :24] = 1.0
    residual = np.where(np.arange(48) < 24, 0.1, 1.0).astype(np.float32) * n
    drawn = rng.standard_normal(z.shape).astype(np.float32)
    out = new_latent(denoised + residual, drawn, 'residual', 1.0, denoised) - denoised
    left, right = out[..., 4:20].std(), out[..., 28:44].std()
    assert left == pytest.approx(0.1, rel=0.2) and right == pytest.approx(1.0, rel=0.2)
    assert abs(np.corrcoef(out.ravel(), residual.ravel())[0, 1]) < 0.1
    np.testing.assert_allclose(_local_rms(np.full((1, 1, 8, 8), 3.0, np.float32)), 3.0, rtol=1e-5)


def test_akld_and_correlation_tell_a_copy_a_new_draw_and_a_wrong_level():
    rng = np.random.default_rng(4)
    clean = rng.integers(40, 200, (64, 64, 3)).astype(np.float64)
    real = clean + rng.normal(0, 8, clean.shape)
    assert calculate_akld(real, real, clean) == 0 and noise_correlation(real, real, clean) == pytest.approx(1)
    new = clean + rng.normal(0, 8, clean.shape)
    assert calculate_akld(new, real, clean) < 0.1 and abs(noise_correlation(new, real, clean)) < 0.05
    for ratio in (0.25, 4.0):  # a noise of ratio x the real local variance everywhere
        scaled = clean + (real - clean) * math.sqrt(ratio)
        assert calculate_akld(scaled, real, clean) == pytest.approx(0.5 * (ratio - 1 - math.log(ratio)), rel=1e-6)
        assert noise_correlation(scaled, real, clean) == pytest.approx(1)
    far = clean + (real - clean) * 10  # variance ratio 100, clipped at 10 as DANet does
    assert calculate_akld(far, real, clean) == pytest.approx(0.5 * (10 - 1 - math.log(10)), rel=1e-6)


def run(*argv):
    generate_noise.main([str(a) for a in argv])


def test_the_script_writes_samples_scores_them_and_protects_the_folder(small_model_file, noisy_pairs,
                                                                       tmp_path, capsys):
    _, weights = small_model_file
    (noisy_pairs / 'Noisy' / 'broken.png').write_bytes(b'not a png')
    out = tmp_path / 'out'
    with pytest.raises(SystemExit, match=r'1 image\(s\) failed:\n  broken.png: '):
        run('--data_path', noisy_pairs, '--result_dir', out, '--weights', weights, '--num_samples', 2,
            '--epsilon', 0.2, '--tile', 0)
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['.generate_noise.json', '.lock', 'a_0.png', 'a_1.png', 'b_0.png', 'b_1.png']
    assert 'generated noisy versions of 2 of 3 image(s)' in printed and 'mean over 4 sample(s) with GT' in printed
    assert 'a_1.png: AKLD ' in printed and 'noise correlation' in printed
    noisy = read_image_raw(str(noisy_pairs / 'Noisy' / 'a.png'))
    assert read_image_raw(str(out / 'a_0.png')).dtype == np.uint8
    assert not np.array_equal(read_image_raw(str(out / 'a_0.png')), noisy)
    assert not np.array_equal(read_image_raw(str(out / 'a_0.png')), read_image_raw(str(out / 'a_1.png')))
    before = {name: (out / name).read_bytes() for name in os.listdir(out) if name.endswith('.png')}
    with pytest.raises(SystemExit, match='already exist'):
        run('--data_path', noisy_pairs, '--result_dir', out, '--weights', weights, '--num_samples', 2)
    with pytest.raises(SystemExit, match=r'other settings \(epsilon: 0.2 -> 0.3\)'):
        run('--data_path', noisy_pairs, '--result_dir', out, '--weights', weights, '--num_samples', 2,
            '--epsilon', 0.3, '--tile', 0, '--resume')
    assert {name: (out / name).read_bytes() for name in before} == before


def test_epsilon_zero_through_the_script_returns_each_input(small_model_file, noisy_pairs, tmp_path):
    """The oracle on the written files: at most 1 grey level after quantisation."""
    _, weights = small_model_file
    for mode in ('perturb', 'residual'):
        out = tmp_path / mode
        run('--input', noisy_pairs / 'Noisy', '--result_dir', out, '--weights', weights, '--mode', mode,
            '--epsilon', 0, '--num_samples', 1)
        for name in ('a', 'b'):
            noisy = read_image(str(noisy_pairs / 'Noisy' / f'{name}.png'))
            assert np.abs(read_image(str(out / f'{name}_0.png')) - noisy).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize('flags,message', [
    (['--mode', 'resample', '--epsilon', '1.5'], 'epsilon must be a finite number in [0, 1] for mode resample'),
    (['--epsilon', '-1'], 'epsilon must be a finite number >= 0'),
    (['--epsilon', 'nan'], 'epsilon must be a finite number >= 0'),
    (['--tile', '66'], 'tile must be a multiple'),
])
def test_settings_that_cannot_work_stop_in_one_line_before_any_image(small_model_file, noisy_pairs, tmp_path,
                                                                     flags, message):
    _, weights = small_model_file
    with pytest.raises(SystemExit) as stop:
        run('--data_path', noisy_pairs, '--result_dir', tmp_path / 'out', '--weights', weights, *flags)
    text = str(stop.value.code)
    assert message in text and len(text.splitlines()) == 1
    assert not (tmp_path / 'out').exists() or not [n for n in os.listdir(tmp_path / 'out') if n.endswith('.png')]


def test_the_studys_baselines_match_the_noise_they_are_fitted_to():
    """benchmarks.noise_generation: AWGN takes each channel's noise level; Poisson-Gaussian
    recovers a signal-dependent variance a * clean + b, so its AKLD is far below AWGN's."""
    from benchmarks.noise_generation import awgn_like, poisson_gaussian_like, scores

    rng = np.random.default_rng(5)
    clean = np.repeat(np.linspace(5, 250, 256)[None, :, None], 128, axis=0).repeat(3, axis=2)
    noisy = np.clip(np.rint(clean + rng.standard_normal(clean.shape) * np.sqrt(0.8 * clean + 4.0)), 0, 255)
    awgn, fitted = awgn_like(noisy, clean, rng), poisson_gaussian_like(noisy, clean, rng)
    np.testing.assert_allclose((awgn - clean).std(axis=(0, 1)), (noisy - clean).std(axis=(0, 1)), rtol=0.05)
    dark, bright = slice(20, 60), slice(196, 236)  # away from clipping at 0 and 255
    for part in (dark, bright):
        np.testing.assert_allclose((fitted - clean)[:, part].std(), (noisy - clean)[:, part].std(), rtol=0.1)
    assert scores(fitted, noisy, clean)[0] < 0.5 * scores(awgn, noisy, clean)[0]
    assert abs(scores(fitted, noisy, clean)[1]) < 0.05 and scores(noisy, noisy, clean)[1] == pytest.approx(1)
