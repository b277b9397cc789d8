"""The denoising routine: padding, tiling, self-ensemble inversion, Monte-Carlo averaging, seeds."""
import numpy as np
import paddle
import pytest

from core.contract import Geometry
from core.denoise import (DenoiseOptions, DygraphBackend, denoise, denoise_array, latent_field,
                          pad_to_multiple, sample_latent)
from core.tiling import tile_layout
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
    noisy = image([1, 3, 150, 203], seed=2)
    out = denoise(IdentityBackend(), noisy, DenoiseOptions(tile=64, tile_overlap=16))
    np.testing.assert_allclose(out, noisy, atol=1e-6)


@pytest.mark.parametrize('size,tile,overlap', [(1024, 512, 32), (3000, 1024, 64), (516, 512, 64),
                                               (1000, 128, 30), (256, 64, 0), (64, 64, 32)])
def test_tile_layout_covers_with_overlap_on_the_grid(size, tile, overlap):
    starts, length = tile_layout(size, tile, overlap, 4)
    assert length <= tile and length % 4 == 0 and all(start % 4 == 0 for start in starts)
    assert starts[0] == 0 and starts[-1] + length == size
    steps = np.diff(starts)
    assert (steps > 0).all() and (length - steps >= overlap).all()
    assert len(starts) == 1 or len(starts) * length < size + len(starts) * (overlap + 8)  # no waste


def test_latent_field_regions_do_not_depend_on_how_it_is_cut():
    whole = latent_field(5, 2, 45, range(0, 12), range(0, 150))
    np.testing.assert_array_equal(whole[:, 3:7, 60:130], latent_field(5, 2, 45, range(3, 7), range(60, 130)))
    assert whole.std() == pytest.approx(1, abs=0.02)
    assert not np.allclose(whole, latent_field(5, 3, 45, range(0, 12), range(0, 150)))  # another draw
    assert not np.allclose(whole, latent_field(6, 2, 45, range(0, 12), range(0, 150)))  # another seed


@pytest.mark.parametrize('options', [dict(seed=3), dict(seed=3, mc_samples=2, self_ensemble=True)],
                         ids=['one_z', 'mc_and_ensemble'])
def test_tiled_equals_whole_image_with_the_same_seed(small_backend, options):
    """Tiles take their slice of the image's latent field, so what remains between tiled and
    whole is the receptive field cut at tile borders, which the blend keeps out. This random
    model's output spans about +-17; the difference measured 0.005 (with one z drawn per tile,
    as before the shared field, it was 22)."""
    noisy = image([1, 3, 96, 136], seed=4)
    whole = denoise(small_backend, noisy, DenoiseOptions(**options))
    tiled = denoise(small_backend, noisy, DenoiseOptions(tile=64, tile_overlap=32, **options))
    assert np.abs(tiled - whole).max() < 0.05


def test_overlap_shrinks_the_seams(small_backend):
    noisy = image([1, 3, 96, 128], seed=4)
    whole = denoise(small_backend, noisy, DenoiseOptions(seed=1))
    diffs = [np.abs(denoise(small_backend, noisy, DenoiseOptions(seed=1, tile=64, tile_overlap=overlap))
                    - whole).mean() for overlap in (0, 32)]
    assert diffs[1] < diffs[0] / 2


def test_integer_images_equal_their_float_values(small_backend):
    pixels = np.random.default_rng(3).integers(0, 65536, (1, 40, 52, 3)).astype(np.uint16)
    as_float = pixels.astype(np.float32) / 65535
    np.testing.assert_allclose(denoise_array(small_backend, pixels, DenoiseOptions(seed=2, tile=64)),
                               denoise_array(small_backend, as_float, DenoiseOptions(seed=2, tile=64)),
                               atol=1e-5)


class CountingBackend(IdentityBackend):
    """The identity, recording the noisy shapes it was given."""
    bytes_per_pixel = 100

    def __init__(self):
        super().__init__()
        self.shapes = []

    def restore(self, noisy, z):
        self.shapes.append(noisy.shape)
        return super().restore(noisy, z)


def test_auto_tile_follows_the_memory_budget():
    noisy = image([1, 3, 200, 300], seed=1)
    fits = CountingBackend()
    out = denoise(fits, noisy, DenoiseOptions(tile='auto', max_memory=200 * 300 * 100))
    assert fits.shapes == [(1, 3, 200, 300)]
    np.testing.assert_allclose(out, noisy, atol=1e-6)
    tight = CountingBackend()
    out = denoise(tight, noisy, DenoiseOptions(tile='auto', max_memory=100 * 100 * 100, mc_samples=2))
    assert len(tight.shapes) > 1
    assert all(h * w * 100 * 2 <= 100 * 100 * 100 for _, _, h, w in tight.shapes)
    np.testing.assert_allclose(out, noisy, atol=1e-6)


@pytest.mark.parametrize('options,match', [
    (dict(gaussian_scale=float('nan')), 'gaussian_scale'), (dict(gaussian_scale=float('inf')), 'gaussian_scale'),
    (dict(gaussian_scale=-1.0), 'gaussian_scale'), (dict(seed=-1), 'seed'),
    (dict(tile=32, tile_overlap=8), 'at least 64'), (dict(tile=66), 'multiple of'),
    (dict(tile=64, tile_overlap=33), 'at most half'), (dict(tile=64, tile_overlap=-1), 'tile_overlap'),
    (dict(tile='auto', max_memory=0), 'max_memory')])
def test_options_that_cannot_work_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        DenoiseOptions(**options).check(4)


def test_mc_mean_equals_manual_average(small_model, small_backend):
    noisy = image([1, 3, 32, 40], seed=5)
    samples = 3
    out = denoise(small_backend, noisy, DenoiseOptions(mc_samples=samples, seed=7))
    with paddle.no_grad():
        lr_image = small_model.encode(paddle.to_tensor(noisy))[:, :3]
        z = np.stack([latent_field(7, k, 45, range(8), range(10)) for k in range(samples)])
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
        denoise(small_backend, image([1, 3, 16, 16]), DenoiseOptions(tile=64, tile_overlap=40))


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
