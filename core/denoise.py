"""The one denoising routine: pad, flip/transpose, draw z, restore, average, blend tiles.

Every path that denoises goes through ``denoise``: validation during training,
test_denoising_sidd.py, predict.py and infer.py. What runs the network is a *back end*:
anything with a ``geometry`` and ``restore(noisy, z)`` that computes ``InvNet.denoise``
(encode, keep the low-resolution image, attach z, decode) on numpy arrays. The dygraph
model is one (``DygraphBackend``); the exported programs run by Paddle Inference, ONNX
Runtime and OpenVINO are others (deploy/). They compute the same function, so every back
end gets padding, self-ensemble, Monte-Carlo samples and tiling from this module alike.

The latent z is a field over the whole (padded) image at its low resolution, one per draw
(ensemble variant x Monte-Carlo sample), defined by the image's seed piece by piece
(``latent_field``). A tile takes its
slice of the field, and a flipped or transposed ensemble variant the same transform of
it, so with a seed an image's result depends neither on its batch, nor on the back end,
nor (up to what a tile border cuts from the receptive field) on the tiling.
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Protocol, Tuple, Union

import numpy as np
import paddle

from config import paper_default
from core.contract import Geometry
from core.tiling import DEFAULT_MAX_MEMORY, DEFAULT_OVERLAP, check_tiling, resolve_tile, run_tiled
from networks.InvDN_model import InvNet
from utils.image_io import to_float

ENSEMBLE_SIZE = 8
# Columns of one piece of the latent field (latent_field): small enough that a tile draws
# little beyond its own region, large enough that seeding a generator per piece is cheap.
LATENT_BLOCK = 64


class Backend(Protocol):
    """Runs ``InvNet.denoise``: noisy [N, C, H, W] and z [K*N, z_channels, H/s, W/s]
    (float32; sample-major) -> [K*N, C, H, W]. ``bytes_per_pixel``: the working memory a
    run takes per pixel of noisy and draw of z, for the paper's network (what ``tile='auto'``
    sizes tiles by; benchmarks/photos.py measures it)."""
    name: str
    geometry: Geometry
    bytes_per_pixel: float

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray: ...


class DygraphBackend:
    """The Paddle model itself (eager mode), on Paddle's current device."""
    name = 'dygraph'
    bytes_per_pixel = 1300  # benchmarks/photos.py

    def __init__(self, net: InvNet):
        self.net = net
        self.geometry = Geometry.of(net)

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._run(lambda: self.net.denoise(paddle.to_tensor(noisy), paddle.to_tensor(z)))

    def encode(self, noisy: np.ndarray) -> np.ndarray:
        """The forward pass: noisy [N, C, H, W] -> latent [N, latent channels, H/s, W/s]
        (core.noise_generation)."""
        return self._run(lambda: self.net.encode(paddle.to_tensor(noisy)))

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """The reverse pass: latent -> image [N, C, H, W]."""
        return self._run(lambda: self.net.decode(paddle.to_tensor(latent)))

    def _run(self, compute: Callable[[], paddle.Tensor]) -> np.ndarray:
        """``compute()`` in eval mode without gradients, as numpy; the model's mode is restored
        (validation runs on the model being trained)."""
        was_training = self.net.training
        self.net.eval()
        try:
            with paddle.no_grad():
                return compute().numpy()
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
    seed: the latent field's seed (a non-negative integer); None draws fresh entropy per
        image (nondeterministic).
    tile, tile_overlap: denoise tiles of at most ``tile`` x ``tile`` pixels overlapping by
        at least ``tile_overlap`` and blend them (core.tiling), so that memory follows the
        tile; None: the whole image at once; 'auto': the whole image when the back end's
        working memory for it (``Backend.bytes_per_pixel``) fits ``max_memory`` bytes, else
        the largest tile that does.
    """
    mc_samples: int = 1
    self_ensemble: bool = False
    gaussian_scale: float = paper_default('train.gaussian_scale')
    seed: Optional[int] = None
    tile: Union[int, str, None] = None
    tile_overlap: int = DEFAULT_OVERLAP
    max_memory: int = DEFAULT_MAX_MEMORY

    def check(self, size_multiple: int = 1) -> None:
        """Raise ValueError naming the option that cannot work."""
        if int(self.mc_samples) != self.mc_samples or self.mc_samples < 1:
            raise ValueError(f'mc_samples must be a positive integer, got {self.mc_samples}')
        if not (math.isfinite(self.gaussian_scale) and self.gaussian_scale >= 0):
            raise ValueError(f'gaussian_scale must be a finite number >= 0 (the standard '
                             f'deviation of z; 1 as trained), got {self.gaussian_scale}')
        if self.seed is not None and (int(self.seed) != self.seed or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer (or 'none' for fresh draws), got {self.seed}")
        if self.tile == 'auto':
            if not self.max_memory > 0:
                raise ValueError(f'max_memory must be positive, got {self.max_memory}')
            check_tiling(None, self.tile_overlap, size_multiple)
        else:
            check_tiling(self.tile, self.tile_overlap, size_multiple)


def sample_latent(shape: tuple, rng: np.random.Generator,
                  gaussian_scale: float = paper_default('train.gaussian_scale')) -> np.ndarray:
    """z ~ N(0, gaussian_scale^2) as float32, drawn from ``rng`` (official ``gaussian_batch``)."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(gaussian_scale)


def latent_field(seed: int, draw: int, z_channels: int, rows: range, cols: range,
                 gaussian_scale: float = paper_default('train.gaussian_scale')) -> np.ndarray:
    """The region ``rows`` x ``cols`` of draw ``draw`` of an image's latent field,
    [z_channels, len(rows), len(cols)]. The field is made of pieces of one row and
    LATENT_BLOCK columns; the piece at row r, columns from LATENT_BLOCK * b comes from
    ``np.random.default_rng([seed, draw, r, b])``, so any region is the same whether the
    field is drawn whole or tile by tile, and a tile draws little more than its own region."""
    first, last = cols.start // LATENT_BLOCK, (cols.stop - 1) // LATENT_BLOCK
    field = np.empty((z_channels, len(rows), (last - first + 1) * LATENT_BLOCK), dtype=np.float32)
    for i, row in enumerate(rows):
        for b in range(first, last + 1):
            field[:, i, (b - first) * LATENT_BLOCK:(b - first + 1) * LATENT_BLOCK] = sample_latent(
                (z_channels, LATENT_BLOCK), np.random.default_rng([seed, draw, row, b]), gaussian_scale)
    offset = cols.start - first * LATENT_BLOCK
    return field[:, :, offset:offset + len(cols)]


def pad_to_multiple(images: np.ndarray, multiple: int, axes: Tuple[int, int] = (-2, -1)) -> np.ndarray:
    """Reflect-pad ``axes`` (H, W; the last two by default) at the bottom/right up to
    multiples of ``multiple``.

    The network halves the resolution ``down_num`` times; crop the result back to H x W.
    """
    height, width = (images.shape[axis] for axis in axes)
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return images
    widths = [(0, 0)] * images.ndim
    widths[axes[0]], widths[axes[1]] = (0, pad_h), (0, pad_w)
    return np.pad(images, widths, mode='reflect' if min(height, width) > 1 else 'edge')


def _transform(x: np.ndarray, variant: int) -> np.ndarray:
    """Variant 0..7 of the official ``forward_x8`` order on the last two axes: bit 0 flips W,
    bit 1 flips H, bit 2 transposes, applied in that order."""
    if variant & 1:
        x = x[..., ::-1]
    if variant & 2:
        x = x[..., ::-1, :]
    if variant & 4:
        x = np.swapaxes(x, -1, -2)
    return np.ascontiguousarray(x)


def _inverse_transform(x: np.ndarray, variant: int) -> np.ndarray:
    if variant & 4:
        x = np.swapaxes(x, -1, -2)
    if variant & 2:
        x = x[..., ::-1, :]
    if variant & 1:
        x = x[..., ::-1]
    return x


def to_nchw_float(pixels: np.ndarray) -> np.ndarray:
    """NHWC pixels as float32 NCHW in [0, 1] (utils.image_io.to_float)."""
    return np.ascontiguousarray(to_float(pixels).transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class _Draws:
    """The latent fields of a batch: one seed per image, ``mc_samples`` draws per ensemble
    variant."""
    seeds: List[int]
    z_channels: int
    mc_samples: int
    gaussian_scale: float

    def for_region(self, variant: int, rows: range, cols: range) -> np.ndarray:
        """z [K*N, z_channels, h, w] (sample-major: row k*N + n is draw k of image n) of the
        region ``rows`` x ``cols`` (low resolution), transformed as ensemble ``variant``."""
        z = np.stack([np.stack([latent_field(seed, variant * self.mc_samples + k, self.z_channels,
                                             rows, cols, self.gaussian_scale)
                                for seed in self.seeds])
                      for k in range(self.mc_samples)])
        return _transform(z.reshape((-1,) + z.shape[2:]), variant)


def _restore_region(backend: Backend, noisy: np.ndarray, draws: _Draws, variants: range,
                    rows: range, cols: range) -> np.ndarray:
    """Mean over ensemble variants and MC samples for the padded region ``noisy``
    [N, C, h, w], whose latent rows/columns are ``rows``/``cols``."""
    geometry = backend.geometry
    batch = noisy.shape[0]
    total = None
    for variant in variants:
        restored = backend.restore(_transform(noisy, variant), draws.for_region(variant, rows, cols))
        restored = restored[:, :geometry.channel_in]
        if draws.mc_samples > 1:  # official MC_test: the mean of the sample_num reverse passes
            restored = restored.reshape((draws.mc_samples, batch) + restored.shape[1:]).mean(axis=0)
        restored = _inverse_transform(restored, variant)
        total = restored if total is None else total + restored
    return total / np.float32(len(variants))


def _image_batch(images: np.ndarray, geometry: Geometry) -> Tuple[np.ndarray, bool]:
    """(NHWC batch, whether ``images`` was one HWC image), after checking that ``images`` is
    float in [0, 1] or 8/16-bit with the network's channels."""
    single = getattr(images, 'ndim', None) == 3
    batch = images[None] if single else images
    if (not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[3] != geometry.channel_in
            or not (batch.dtype.kind == 'f' or batch.dtype in (np.uint8, np.uint16))):
        raise ValueError(f'images must be a [N, H, W, {geometry.channel_in}] (or [H, W, '
                         f'{geometry.channel_in}]) array of floats in [0, 1] or 8/16-bit integers, '
                         f'got {type(images).__name__} {getattr(images, "dtype", "")} of shape '
                         f'{list(getattr(images, "shape", []))}')
    return batch, single


@dataclass(frozen=True)
class PaddedBatch:
    """Images ready for the network: ``padded`` NHWC, padded to the downsampling factor;
    ``height`` x ``width`` their size before padding; ``single``: one HWC image was given;
    ``tile``: the tile size to run them in (None: whole)."""
    padded: np.ndarray
    height: int
    width: int
    single: bool
    tile: Optional[int]

    def crop(self, output: np.ndarray) -> np.ndarray:
        """``output`` [N, padded H, padded W, C] back to the images' size and layout."""
        output = output[:, :self.height, :self.width]
        return output[0] if self.single else output


def padded_batch(backend: Backend, images: np.ndarray, options: Any, draws: int = 1) -> PaddedBatch:
    """NHWC (or HWC) ``images`` (float in [0, 1], or uint8/uint16) checked against the back
    end's geometry and ``options`` (DenoiseOptions, or core.noise_generation's NoiseOptions:
    ``check``, ``tile``, ``tile_overlap``, ``max_memory``), padded, with the tile they run in:
    ``options.tile``, 'auto' sized by the back end's working memory for ``draws`` latent
    draws per image."""
    geometry = backend.geometry
    batch, single = _image_batch(images, geometry)
    options.check(geometry.size_multiple)
    multiple = geometry.size_multiple
    padded = pad_to_multiple(batch, multiple, axes=(1, 2))
    padded_h, padded_w = padded.shape[1:3]
    per_pixel = backend.bytes_per_pixel * batch.shape[0] * draws if options.tile == 'auto' else 0.0
    tile = resolve_tile(options.tile, padded_h, padded_w, per_pixel, options.max_memory, multiple,
                        options.tile_overlap)
    return PaddedBatch(padded, batch.shape[1], batch.shape[2], single, tile)


def denoise_array(backend: Backend, images: np.ndarray,
                  options: DenoiseOptions = DenoiseOptions()) -> np.ndarray:
    """Denoise NHWC (or HWC) ``images``: float32 in [0, 1], or uint8/uint16 (converted tile by
    tile, so a large photo is held once in its own integer type) -> float32 in the same
    layout (not clipped). With ``options.tile`` memory follows the tile, not the image."""
    geometry, multiple = backend.geometry, backend.geometry.size_multiple
    prepared = padded_batch(backend, images, options, int(options.mc_samples))
    padded = prepared.padded
    seeds = [int(np.random.SeedSequence().entropy) if options.seed is None else int(options.seed)
             for _ in range(padded.shape[0])]
    draws = _Draws(seeds, geometry.z_channels, int(options.mc_samples), float(options.gaussian_scale))
    variants = range(ENSEMBLE_SIZE if options.self_ensemble else 1)

    def restore_region(rows: slice, cols: slice) -> np.ndarray:
        restored = _restore_region(backend, to_nchw_float(padded[:, rows, cols]), draws, variants,
                                   range(rows.start // multiple, rows.stop // multiple),
                                   range(cols.start // multiple, cols.stop // multiple))
        return restored.transpose(0, 2, 3, 1)

    return prepared.crop(run_tiled(restore_region, padded.shape[1], padded.shape[2], prepared.tile,
                                   options.tile_overlap, multiple))


def denoise(backend: Backend, noisy: np.ndarray, options: DenoiseOptions = DenoiseOptions()
            ) -> np.ndarray:
    """Denoise ``noisy`` [N, C, H, W] (float32 in [0, 1], any H, W) -> [N, C, H, W] (not clipped)."""
    geometry = backend.geometry
    if not isinstance(noisy, np.ndarray) or noisy.ndim != 4 or noisy.shape[1] != geometry.channel_in:
        raise ValueError(f'noisy must be a float32 array [N, {geometry.channel_in}, H, W], got '
                         f'{type(noisy).__name__} of shape {list(getattr(noisy, "shape", []))}')
    restored = denoise_array(backend, noisy.transpose(0, 2, 3, 1), options)
    return np.ascontiguousarray(restored.transpose(0, 3, 1, 2))
