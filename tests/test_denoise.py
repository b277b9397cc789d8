"""The denoising routine: padding, tiling, self-ensemble inversion, Monte-Carlo averaging, seeds."""
import numpy as np
import paddle
import pytest

from core.contract import Geometry
from core.denoise import DenoiseOptions, DygraphBackend, denoise, pad_to_multiple, sample_latent
from networks import build_invnet


@pytest.fixture(scope='module')
def small_model():
    paddle.seed(0)
    return build_invnet(block_num=[1, 1])


@pytest.fixture(scope='module')
def small_backend(small_model):
    return DygraphBackend(small_model)


def image(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


class IdentityBackend:
    """Returns the noisy image for every draw of z, so denoising is the identity."""
    name = 'identity'

    def __init__(self, size_multiple=4):
        self.geometry = Geometry(channel_in=3, channel_out=3, latent_channels=6,
                                 size_multiple=size_multiple)

    def restore(self, noisy, z):
        assert z.shape[1:] == (3, noisy.shape[2] // self.geometry.size_multiple,
                               noisy.shape[3] // self.geometry.size_multiple)
        return np.tile(noisy, (z.shape[0] // noisy.shape[0], 1, 1, 1))


def test_pad_to_multiple_reflects_and_keeps_content():
    x = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(padded[:, :, :5, :6], x)
    np.testing.assert_array_equal(padded[:, :, 5, :6], x[:, :, 3])  # reflection, edge not repeated
    aligned = x[:, :, :4, :4]
    assert pad_to_multiple(aligned, 4) is aligned


def test_odd_sizes_equal_explicit_padding(small_backend):
    noisy = image([1, 3, 37, 45])
    out = denoise(small_backend, noisy, DenoiseOptions(seed=3))
    assert out.shape == (1, 3, 37, 45)
    expected = denoise(small_backend, pad_to_multiple(noisy, 4), DenoiseOptions(seed=3))[:, :, :37, :45]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_self_ensemble_of_identity_returns_input():
    noisy = image([2, 3, 21, 34], seed=1)  # non-square and odd: transposes and padding matter
    out = denoise(IdentityBackend(), noisy, DenoiseOptions(self_ensemble=True, mc_samples=3, seed=0))
    np.testing.assert_allclose(out, noisy, atol=1e-6)


def test_tiles_of_identity_blend_to_input():
    noisy = image([1, 3, 72, 100], seed=2)
    out = denoise(IdentityBackend(), noisy, DenoiseOptions(tile=32, tile_overlap=8))
    np.testing.assert_allclose(out, noisy, atol=1e-6)


def test_tiled_close_to_whole_image(small_backend):
    """z = 0 makes both deterministic; the difference comes from the receptive field
    (about 70 px for block_num [1, 1]) being cut at tile borders. Measured with this
    random-weight model: max |diff| about 0.04 at overlap 32 (output range about +-1.5)."""
    noisy = image([1, 3, 96, 128], seed=4)
    whole = denoise(small_backend, noisy, DenoiseOptions(gaussian_scale=0.0))
    diffs = [np.abs(denoise(small_backend, noisy, DenoiseOptions(gaussian_scale=0.0, tile=64,
                                                                 tile_overlap=overlap)) - whole).max()
             for overlap in (8, 32)]
    assert diffs[1] < 0.1
    assert diffs[1] < diffs[0]  # more overlap, smaller seams


def test_mc_mean_equals_manual_average(small_model, small_backend):
    noisy = image([1, 3, 32, 40], seed=5)
    samples = 3
    out = denoise(small_backend, noisy, DenoiseOptions(mc_samples=samples, seed=7))
    with paddle.no_grad():
        lr_image = small_model.encode(paddle.to_tensor(noisy))[:, :3]
        z = sample_latent((samples, 45, 8, 10), np.random.default_rng(7))
        manual = np.mean([small_model.decode(paddle.concat([lr_image, paddle.to_tensor(z[k:k + 1])],
                                                           axis=1))[:, :3].numpy()
                          for k in range(samples)], axis=0)
    np.testing.assert_allclose(out, manual, atol=1e-5)


def test_seed_reproducible_and_independent_of_batch(small_backend):
    batch = image([2, 3, 32, 32], seed=6)
    out = denoise(small_backend, batch, DenoiseOptions(seed=11))
    alone = denoise(small_backend, batch[1:], DenoiseOptions(seed=11))
    np.testing.assert_allclose(out[1:], alone, atol=1e-6)
    other = denoise(small_backend, batch, DenoiseOptions(seed=None))
    assert np.abs(other - out).max() > 1e-4


def test_training_mode_restored_and_bad_arguments(small_model, small_backend):
    small_model.train()
    denoise(small_backend, image([1, 3, 16, 16]), DenoiseOptions(seed=0))
    assert small_model.training
    small_model.eval()
    with pytest.raises(ValueError, match='mc_samples'):
        denoise(small_backend, image([1, 3, 16, 16]), DenoiseOptions(mc_samples=0))
    with pytest.raises(ValueError, match=r'\[N, 3, H, W\]'):
        denoise(small_backend, image([3, 16, 16]))
    with pytest.raises(ValueError, match='tile_overlap'):
        denoise(small_backend, image([1, 3, 16, 16]), DenoiseOptions(tile=16, tile_overlap=16))


def test_denoise_pass_equals_encode_decode(small_model):
    """InvNet.denoise (what every back end runs) = decode([LR of encode, z]) per draw, with
    the forward pass shared by the K draws of z (sample-major rows)."""
    noisy = paddle.to_tensor(image([2, 3, 16, 24], seed=8))
    z = paddle.to_tensor(sample_latent((6, 45, 4, 6), np.random.default_rng(1)))
    with paddle.no_grad():
        out = small_model.denoise(noisy, z).numpy()
        lr_image = small_model.encode(noisy)[:, :3]
        for row in range(6):
            expected = small_model.decode(paddle.concat([lr_image[row % 2:row % 2 + 1],
                                                         z[row:row + 1]], axis=1))[:, :3]
            np.testing.assert_allclose(out[row], expected.numpy()[0], atol=1e-6)
