"""The denoising routine: padding, tiling, self-ensemble inversion, Monte-Carlo averaging, seeds."""
import numpy as np
import paddle
import pytest

from networks import build_invnet
from utils.denoise import InvertiblePasses, denoise, pad_to_multiple, sample_latent


@pytest.fixture(scope='module')
def small_model():
    paddle.seed(0)
    return build_invnet(block_num=[1, 1])


def image(shape, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).random(shape, dtype=np.float32))


def identity_like(size_multiple=4):
    """Forward keeps the image as the 'low-resolution' part and adds 3 latent channels;
    reverse returns the image part and ignores z, so denoising is the identity."""
    return InvertiblePasses(forward=lambda x: paddle.concat([x, paddle.zeros_like(x)], axis=1),
                            reverse=lambda y: y[:, :3], channel_in=3, channel_out=3,
                            latent_channels=6, size_multiple=size_multiple)


def test_pad_to_multiple_reflects_and_keeps_content():
    x = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(padded[:, :, :5, :6], x)
    np.testing.assert_array_equal(padded[:, :, 5, :6], x[:, :, 3])  # reflection, edge not repeated
    aligned = x[:, :, :4, :4]
    assert pad_to_multiple(aligned, 4) is aligned


def test_odd_sizes_equal_explicit_padding(small_model):
    noisy = image([1, 3, 37, 45])
    out = denoise(small_model, noisy, seed=3)
    assert out.shape == [1, 3, 37, 45]
    padded = paddle.to_tensor(pad_to_multiple(noisy.numpy(), 4))
    expected = denoise(small_model, padded, seed=3)[:, :, :37, :45]
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-6)


def test_self_ensemble_of_identity_returns_input():
    noisy = image([2, 3, 21, 34], seed=1)  # non-square and odd: transposes and padding matter
    out = denoise(identity_like(), noisy, self_ensemble=True, mc_samples=3, seed=0)
    np.testing.assert_allclose(out.numpy(), noisy.numpy(), atol=1e-6)


def test_tiles_of_identity_blend_to_input():
    noisy = image([1, 3, 72, 100], seed=2)
    out = denoise(identity_like(), noisy, tile=32, tile_overlap=8)
    np.testing.assert_allclose(out.numpy(), noisy.numpy(), atol=1e-6)


def test_tiled_close_to_whole_image(small_model):
    """z = 0 makes both deterministic; the difference comes from the receptive field
    (about 70 px for block_num [1, 1]) being cut at tile borders. Measured with this
    random-weight model: max |diff| about 0.04 at overlap 32 (output range about +-1.5)."""
    noisy = image([1, 3, 96, 128], seed=4)
    whole = denoise(small_model, noisy, gaussian_scale=0.0).numpy()
    diffs = [np.abs(denoise(small_model, noisy, gaussian_scale=0.0, tile=64, tile_overlap=overlap).numpy()
                    - whole).max() for overlap in (8, 32)]
    assert diffs[1] < 0.1
    assert diffs[1] < diffs[0]  # more overlap, smaller seams


def test_mc_mean_equals_manual_average(small_model):
    noisy = image([1, 3, 32, 40], seed=5)
    samples = 3
    out = denoise(small_model, noisy, mc_samples=samples, seed=7)
    with paddle.no_grad():
        latent = small_model(noisy)
        z = sample_latent((samples, 45, 8, 10), np.random.default_rng(7))
        manual = np.mean([small_model(paddle.concat([latent[:, :3], paddle.to_tensor(z[k:k + 1])], axis=1),
                                      rev=True)[:, :3].numpy() for k in range(samples)], axis=0)
    np.testing.assert_allclose(out.numpy(), manual, atol=1e-5)


def test_seed_reproducible_and_independent_of_batch(small_model):
    batch = image([2, 3, 32, 32], seed=6)
    out = denoise(small_model, batch, seed=11).numpy()
    alone = denoise(small_model, batch[1:], seed=11).numpy()
    np.testing.assert_allclose(out[1:], alone, atol=1e-6)
    other = denoise(small_model, batch, seed=None).numpy()
    assert np.abs(other - out).max() > 1e-4


def test_training_mode_restored_and_bad_arguments(small_model):
    small_model.train()
    denoise(small_model, image([1, 3, 16, 16]), seed=0)
    assert small_model.training
    small_model.eval()
    with pytest.raises(ValueError, match='mc_samples'):
        denoise(small_model, image([1, 3, 16, 16]), mc_samples=0)
    with pytest.raises(ValueError, match=r'\[N, 3, H, W\]'):
        denoise(small_model, image([3, 16, 16]))
