"""The one denoising routine: forward, keep the low-resolution image, draw z, reverse.

Every script (validation during training, test_denoising_sidd.py, predict.py) goes
through ``denoise``; infer.py shares its latent sampling and padding. The routine is
written against two functions, ``forward(noisy) -> latent`` and
``reverse(latent) -> image`` (an ``InvertiblePasses``), so a faster implementation of
the two passes can stand in for the dygraph ``InvNet``.

Latent draws are made per image: image n of a batch draws from its own generator
``np.random.default_rng(seed)``, in the order (tile, ensemble variant, MC sample). So
with a seed, an image's result does not depend on the batch it is in, and predict.py
and infer.py (which draws ``sample_latent((1, C, h, w), np.random.default_rng(seed))``
per image) produce the same images.
"""
import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import paddle

from networks.InvDN_model import InvNet

Pass = Callable[[paddle.Tensor], paddle.Tensor]
ENSEMBLE_SIZE = 8


@dataclass
class InvertiblePasses:
    """The two passes of an invertible denoiser and the shapes they work with.

    ``forward``: noisy [N, channel_in, H, W] -> latent [N, latent_channels, h, w] whose
    first ``channel_out`` channels are the low-resolution image; ``reverse``: latent ->
    image [N, >= channel_in, H, W]. H and W must be multiples of ``size_multiple``.
    """
    forward: Pass
    reverse: Pass
    channel_in: int = 3
    channel_out: int = 3
    latent_channels: int = 48
    size_multiple: int = 4


def as_passes(model: Union[InvNet, InvertiblePasses]) -> InvertiblePasses:
    """The two passes of an ``InvNet`` (or subclass, e.g. ``InvNetOneForward``)."""
    if isinstance(model, InvertiblePasses):
        return model
    if not isinstance(model, InvNet):
        raise TypeError(f'expected an InvNet or InvertiblePasses, got {type(model).__name__}')
    # InvNet.forward explicitly: subclasses such as InvNetOneForward override forward().
    return InvertiblePasses(forward=lambda x: InvNet.forward(model, x),
                            reverse=lambda y: InvNet.forward(model, y, rev=True),
                            channel_in=model.channel_in, channel_out=model.channel_out,
                            latent_channels=model.latent_channels,
                            size_multiple=model.size_multiple)


def sample_latent(shape: Tuple[int, ...], rng: np.random.Generator,
                  gaussian_scale: float = 1.0) -> np.ndarray:
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


def _transform(x: paddle.Tensor, variant: int) -> paddle.Tensor:
    """Variant 0..7 of the official ``forward_x8`` order: bit 0 flips W, bit 1 flips H,
    bit 2 transposes, applied in that order."""
    if variant & 1:
        x = paddle.flip(x, axis=[3])
    if variant & 2:
        x = paddle.flip(x, axis=[2])
    if variant & 4:
        x = x.transpose([0, 1, 3, 2])
    return x


def _inverse_transform(x: paddle.Tensor, variant: int) -> paddle.Tensor:
    if variant & 4:
        x = x.transpose([0, 1, 3, 2])
    if variant & 2:
        x = paddle.flip(x, axis=[2])
    if variant & 1:
        x = paddle.flip(x, axis=[3])
    return x


def _denoise_block(passes: InvertiblePasses, noisy: paddle.Tensor, mc_samples: int,
                   variants: range, gaussian_scale: float,
                   rngs: List[np.random.Generator]) -> paddle.Tensor:
    """Mean over ensemble variants and MC samples for a padded block [N, C, H, W]."""
    batch = noisy.shape[0]
    total = None
    for variant in variants:
        latent = passes.forward(_transform(noisy, variant))
        lr_image = latent[:, :passes.channel_out]
        _, _, height, width = latent.shape
        z_shape = (mc_samples, passes.latent_channels - passes.channel_out, height, width)
        # [K, N, ...] flattened sample-major, matching paddle.tile of lr_image below.
        z = np.stack([sample_latent(z_shape, rng, gaussian_scale) for rng in rngs], axis=1)
        z = paddle.to_tensor(z.reshape((mc_samples * batch,) + z_shape[1:]))
        lr_batch = paddle.tile(lr_image, [mc_samples, 1, 1, 1]) if mc_samples > 1 else lr_image
        restored = passes.reverse(paddle.concat([lr_batch, z], axis=1))[:, :passes.channel_in]
        if mc_samples > 1:  # official MC_test: the mean of the sample_num reverse passes
            restored = restored.reshape([mc_samples, batch] + restored.shape[1:]).mean(axis=0)
        restored = _inverse_transform(restored, variant)
        total = restored if total is None else total + restored
    return total / len(variants)


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


def _denoise_tiled(passes: InvertiblePasses, noisy: paddle.Tensor, tile: int, overlap: int,
                   **block_kwargs) -> paddle.Tensor:
    """Denoise overlapping tiles one at a time and blend them (memory bounded by the tile)."""
    multiple = passes.size_multiple
    batch, channels, height, width = noisy.shape
    # Tiles start on multiples of size_multiple so each sees the Haar grid of the whole image.
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    output = np.zeros((batch, channels, height, width), dtype=np.float32)
    weight_sum = np.zeros((height, width), dtype=np.float32)
    for top in _tile_starts(height, tile, stride):
        for left in _tile_starts(width, tile, stride):
            rows = slice(top, min(top + tile, height))
            cols = slice(left, min(left + tile, width))
            restored = _denoise_block(passes, noisy[:, :, rows, cols], **block_kwargs).numpy()
            weights = np.outer(_blend_weights(top, rows.stop - top, height, overlap),
                               _blend_weights(left, cols.stop - left, width, overlap))
            output[:, :, rows, cols] += restored * weights
            weight_sum[rows, cols] += weights
    output /= weight_sum
    return paddle.to_tensor(output)


@contextlib.contextmanager
def _eval_mode(model: object) -> Iterator[None]:
    """``model.eval()`` for the duration, then restore training mode if it was on."""
    was_training = isinstance(model, paddle.nn.Layer) and model.training
    if isinstance(model, paddle.nn.Layer):
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def denoise(model: Union[InvNet, InvertiblePasses], noisy: paddle.Tensor, mc_samples: int = 1,
            self_ensemble: bool = False, gaussian_scale: float = 1.0, seed: Optional[int] = None,
            tile: Optional[int] = None, tile_overlap: int = 32) -> paddle.Tensor:
    """Denoise ``noisy`` [N, 3, H, W] in [0, 1] (any H, W) -> [N, 3, H, W] (not clipped).

    mc_samples: z draws per input, reverse passes batched and averaged (official
        ``MC_test``; the paper evaluates with 16).
    self_ensemble: average over the 8 flips/transposes (official ``forward_x8``, and
        ``Multi_forward_x8`` with MC).
    gaussian_scale: standard deviation of z (1 in the paper).
    seed: per-image latent generator seed; None draws fresh entropy (nondeterministic).
    tile, tile_overlap: denoise tiles of at most ``tile`` x ``tile`` pixels overlapping by
        ``tile_overlap`` and blend them smoothly, for large images in bounded memory.
    """
    passes = as_passes(model)
    if not isinstance(noisy, paddle.Tensor) or noisy.ndim != 4 or noisy.shape[1] != passes.channel_in:
        raise ValueError(f'noisy must be a paddle Tensor [N, {passes.channel_in}, H, W], got '
                         f'{type(noisy).__name__} of shape {list(getattr(noisy, "shape", []))}')
    if int(mc_samples) != mc_samples or mc_samples < 1:
        raise ValueError(f'mc_samples must be a positive integer, got {mc_samples}')
    if tile is not None and (tile < passes.size_multiple or not 0 < tile_overlap < tile):
        raise ValueError(f'tile must be >= {passes.size_multiple} and 0 < tile_overlap < tile, '
                         f'got tile={tile}, tile_overlap={tile_overlap}')
    height, width = noisy.shape[2:]
    multiple = passes.size_multiple
    if height % multiple or width % multiple:
        noisy = paddle.to_tensor(pad_to_multiple(noisy.numpy(), multiple))
    block_kwargs = dict(mc_samples=int(mc_samples),
                        variants=range(ENSEMBLE_SIZE if self_ensemble else 1),
                        gaussian_scale=gaussian_scale,
                        rngs=[np.random.default_rng(seed) for _ in range(noisy.shape[0])])
    with paddle.no_grad(), _eval_mode(model):
        if tile is None or max(noisy.shape[2:]) <= tile:
            restored = _denoise_block(passes, noisy, **block_kwargs)
        else:
            tile = tile // multiple * multiple
            restored = _denoise_tiled(passes, noisy, tile, tile_overlap, **block_kwargs)
    return restored[:, :, :height, :width]


def denoise_array(model: Union[InvNet, InvertiblePasses], images: np.ndarray,
                  **kwargs) -> np.ndarray:
    """``denoise`` for float32 NHWC (or HWC) arrays in [0, 1]; returns the same layout."""
    single = images.ndim == 3
    batch = images[None] if single else images
    noisy = paddle.to_tensor(np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32))
    restored = denoise(model, noisy, **kwargs).numpy().transpose(0, 2, 3, 1)
    return restored[0] if single else restored
