"""PSNR/SSIM against scikit-image's reference implementations."""
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from utils.metrics import calculate_psnr, calculate_ssim

SSIM_REFERENCE = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def noisy_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 256, shape).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
    return clean, noisy


@pytest.mark.parametrize('shape', [(64, 64, 3), (37, 51, 3), (40, 33)])
def test_psnr_matches_skimage(shape):
    clean, noisy = noisy_pair(shape)
    assert calculate_psnr(noisy, clean) == pytest.approx(
        peak_signal_noise_ratio(clean, noisy, data_range=255), abs=1e-10)


@pytest.mark.parametrize('shape', [(64, 64, 3), (37, 51, 3), (40, 33)])
def test_ssim_matches_skimage_reference(shape):
    clean, noisy = noisy_pair(shape, seed=1)
    channel_axis = -1 if len(shape) == 3 else None
    expected = structural_similarity(clean, noisy, channel_axis=channel_axis, **SSIM_REFERENCE)
    assert abs(calculate_ssim(noisy, clean) - expected) < 1e-4


def test_ssim_is_per_channel_mean():
    """Each channel is scored on its own (the official code scores the 3-channel image thrice)."""
    clean, noisy = noisy_pair((48, 48, 3), seed=2)
    noisy[:, :, 1] = clean[:, :, 1]
    per_channel = [calculate_ssim(noisy[:, :, c], clean[:, :, c]) for c in range(3)]
    assert per_channel[1] == pytest.approx(1.0)
    assert calculate_ssim(noisy, clean) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_crop_border_and_identical_images():
    clean, noisy = noisy_pair((48, 56, 3), seed=3)
    inner = (slice(4, -4), slice(4, -4))
    for metric in (calculate_psnr, calculate_ssim):
        assert metric(noisy, clean, crop_border=4) == pytest.approx(metric(noisy[inner], clean[inner]))
    assert calculate_psnr(clean, clean) == float('inf')
    assert calculate_ssim(clean, clean) == pytest.approx(1.0)


def test_shape_mismatch_is_an_error():
    clean, _ = noisy_pair((32, 32, 3))
    with pytest.raises(ValueError, match='same shape'):
        calculate_psnr(clean, clean[:-1])
    with pytest.raises(ValueError, match='11x11'):
        calculate_ssim(clean[:8, :8], clean[:8, :8])
