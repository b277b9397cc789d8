"""The one denoising routine: pad, flip/transpose, draw z, restore, average, blend tiles.

Every path that denoises goes through ``denoise``: validation during training,
test_denoising_sidd.py, predict.py and infer.py. What runs the network is a *back end*:
anything with a ``geometry`` and ``restore(noisy, z)`` that computes ``InvNet.denoise``
(encode, keep the low-resolution image, attach z, decode) on numpy arrays. The dygraph
model is one (``DygraphBackend``); the exported static program run by Paddle Inference is
another (deploy.paddle_inference). They compute the same function, so every back end gets
padding, self-ensemble, Monte-Carlo samples and tiling from this module alike.

Latent draws are made per image: image n of a batch draws from its own generator
``np.random.default_rng(seed)``, in the order (tile, ensemble variant, MC sample). So with
a seed, an image's result depends neither on its batch nor on the back end.
"""
from dataclasses import dataclass
from typing import List, Optional, Protocol

import numpy as np
import paddle

from config import paper_default
from core.contract import Geometry
from networks.InvDN_model import InvNet

ENSEMBLE_SIZE = 8


class Backend(Protocol):
    """Runs ``InvNet.denoise``: noisy [N, C, H, W] and z [K*N, z_channels, H/s, W/s]
    (float32; sample-major) -> [K*N, C, H, W]."""
    name: str
    geometry: Geometry

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray: ...


class DygraphBackend:
    """The Paddle model itself (eager mode), on Paddle's current device."""
    name = 'dygraph'

    def __init__(self, net: InvNet):
        self.net = net
        self.geometry = Geometry.of(net)

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        was_training = self.net.training
        self.net.eval()
        try:
            with paddle.no_grad():
                return self.net.denoise(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()
        finally:
            if was_training:
                self.net.train()


@dataclass(frozen=True)
class DenoiseOptions:
    """How ``denoise`` averages and tiles; the defaults draw one z for the image as a whole.

    mc_samples: z draws per input, averaged (official ``MC_test`` uses 16).
    self_ensemble: average over the 8 flips/transposes (official ``forward_x8``; with
        ``mc_samples`` 16 the official ``Multi_forward_x8``).
    gaussian_scale: standard deviation of z (1 in the paper).
    seed: per-image latent generator seed; None draws fresh entropy (nondeterministic).
    tile, tile_overlap: denoise tiles of at most ``tile`` x ``tile`` pixels overlapping by
        ``tile_overlap`` and blend them smoothly, for large images in bounded memory.
    """
    mc_samples: int = 1
    self_ensemble: bool = False
    gaussian_scale: float = paper_default('train.gaussian_scale')
    seed: Optional[int] = None
    tile: Optional[int] = None
    tile_overlap: int = 32

    def check(self, size_multiple: int = 1) -> None:
        """Raise ValueError naming the option that cannot work."""
        if int(self.mc_samples) != self.mc_samples or self.mc_samples < 1:
            raise ValueError(f'mc_samples must be a positive integer, got {self.mc_samples}')
        if self.tile is not None and (self.tile < max(size_multiple, 1)
                                      or not 0 < self.tile_overlap < self.tile):
            raise ValueError(f'tile must be >= {size_multiple} and 0 < tile_overlap < tile, got '
                             f'tile={self.tile}, tile_overlap={self.tile_overlap}')


def sample_latent(shape: tuple, rng: np.random.Generator,
                  gaussian_scale: float = paper_default('train.gaussian_scale')) -> np.ndarray:
    """z ~ N(0, gaussian_scale^2) as float32, drawn from ``rng`` (official ``gaussian_batch``)."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(gaussian_scale)


def pad_to_multiple(images: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad the last two axes (H, W) at the bottom/right up to multiples of ``multiple``.

    The network halves the resolution ``down_num`` times; crop the result back with
    ``[..., :H, :W]``.
    """
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return images
    widths = [(0, 0)] * (images.ndim - 2) + [(0, pad_h), (0, pad_w)]
    return np.pad(images, widths, mode='reflect' if min(height, width) > 1 else 'edge')


def _transform(x: np.ndarray, variant: int) -> np.ndarray:
    """Variant 0..7 of the official ``forward_x8`` order: bit 0 flips W, bit 1 flips H,
    bit 2 transposes, applied in that order."""
    if variant & 1:
        x = x[:, :, :, ::-1]
    if variant & 2:
        x = x[:, :, ::-1]
    if variant & 4:
        x = x.transpose(0, 1, 3, 2)
    return np.ascontiguousarray(x)


def _inverse_transform(x: np.ndarray, variant: int) -> np.ndarray:
    if variant & 4:
        x = x.transpose(0, 1, 3, 2)
    if variant & 2:
        x = x[:, :, ::-1]
    if variant & 1:
        x = x[:, :, :, ::-1]
    return x


def _denoise_block(backend: Backend, noisy: np.ndarray, mc_samples: int, variants: range,
                   gaussian_scale: float, rngs: List[np.random.Generator]) -> np.ndarray:
    """Mean over ensemble variants and MC samples for a padded block [N, C, H, W]."""
    geometry = backend.geometry
    batch = noisy.shape[0]
    total = None
    for variant in variants:
        noisy_variant = _transform(noisy, variant)
        height, width = (size // geometry.size_multiple for size in noisy_variant.shape[2:])
        z_shape = (mc_samples, geometry.z_channels, height, width)
        # [K, N, ...] flattened sample-major: row k*N + n is draw k of image n.
        z = np.stack([sample_latent(z_shape, rng, gaussian_scale) for rng in rngs], axis=1)
        restored = backend.restore(noisy_variant, z.reshape((mc_samples * batch,) + z_shape[1:]))
        restored = restored[:, :geometry.channel_in]
        if mc_samples > 1:  # official MC_test: the mean of the sample_num reverse passes
            restored = restored.reshape((mc_samples, batch) + restored.shape[1:]).mean(axis=0)
        restored = _inverse_transform(restored, variant)
        total = restored if total is None else total + restored
    return total / np.float32(len(variants))


def _tile_starts(size: int, tile: int, stride: int) -> List[int]:
    if size <= tile:
        return [0]
    return list(range(0, size - tile, stride)) + [size - tile]


def _blend_weights(start: int, length: int, size: int, overlap: int) -> np.ndarray:
    """1-D tile weights: raised-cosine ramps over ``overlap`` pixels at inner edges.

    Where two tiles overlap by exactly ``overlap``, the rising ramp (sin^2) and the
    falling one (cos^2) sum to 1; any other overlap is normalised by the weight sum.
    """
    weights = np.ones(length, dtype=np.float32)
    ramp = np.sin(0.5 * np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / overlap) ** 2
    ramp_len = min(overlap, length)
    if start > 0:
        weights[:ramp_len] = ramp[:ramp_len]
    if start + length < size:
        weights[length - ramp_len:] *= ramp[:ramp_len][::-1]
    return weights


def _denoise_tiled(backend: Backend, noisy: np.ndarray, tile: int, overlap: int,
                   **block_kwargs) -> np.ndarray:
    """Denoise overlapping tiles one at a time and blend them (memory bounded by the tile)."""
    multiple = backend.geometry.size_multiple
    batch, channels, height, width = noisy.shape
    # Tiles start on multiples of size_multiple so each sees the Haar grid of the whole image.
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    output = np.zeros((batch, channels, height, width), dtype=np.float32)
    weight_sum = np.zeros((height, width), dtype=np.float32)
    for top in _tile_starts(height, tile, stride):
        for left in _tile_starts(width, tile, stride):
            rows = slice(top, min(top + tile, height))
            cols = slice(left, min(left + tile, width))
            restored = _denoise_block(backend, noisy[:, :, rows, cols], **block_kwargs)
            weights = np.outer(_blend_weights(top, rows.stop - top, height, overlap),
                               _blend_weights(left, cols.stop - left, width, overlap))
            output[:, :, rows, cols] += restored * weights
            weight_sum[rows, cols] += weights
    return output / weight_sum


def denoise(backend: Backend, noisy: np.ndarray, options: DenoiseOptions = DenoiseOptions()
            ) -> np.ndarray:
    """Denoise float32 ``noisy`` [N, C, H, W] in [0, 1] (any H, W) -> [N, C, H, W] (not clipped)."""
    geometry = backend.geometry
    if not isinstance(noisy, np.ndarray) or noisy.ndim != 4 or noisy.shape[1] != geometry.channel_in:
        raise ValueError(f'noisy must be a float32 array [N, {geometry.channel_in}, H, W], got '
                         f'{type(noisy).__name__} of shape {list(getattr(noisy, "shape", []))}')
    options.check(geometry.size_multiple)
    height, width = noisy.shape[2:]
    multiple = geometry.size_multiple
    noisy = pad_to_multiple(noisy.astype(np.float32, copy=False), multiple)
    block_kwargs = dict(mc_samples=int(options.mc_samples),
                        variants=range(ENSEMBLE_SIZE if options.self_ensemble else 1),
                        gaussian_scale=options.gaussian_scale,
                        rngs=[np.random.default_rng(options.seed) for _ in range(noisy.shape[0])])
    if options.tile is None or max(noisy.shape[2:]) <= options.tile:
        restored = _denoise_block(backend, noisy, **block_kwargs)
    else:
        tile = options.tile // multiple * multiple
        restored = _denoise_tiled(backend, noisy, tile, options.tile_overlap, **block_kwargs)
    return restored[:, :, :height, :width]


def denoise_array(backend: Backend, images: np.ndarray,
                  options: DenoiseOptions = DenoiseOptions()) -> np.ndarray:
    """``denoise`` for float32 NHWC (or HWC) arrays in [0, 1]; returns the same layout."""
    single = images.ndim == 3
    batch = images[None] if single else images
    restored = denoise(backend, np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32),
                       options)
    restored = restored.transpose(0, 2, 3, 1)
    return restored[0] if single else restored
