"""New noisy images from a noisy one: encode, manipulate the noisy latent, decode.

The paper's third claim (abstract: "via manipulating the noisy latent representation,
InvDN is also able to generate noise more similar to the original one"); the official code
has no such path. The forward pass maps a noisy image to its clean low-resolution image
(LR) and the latent z that holds its noise and detail; decoding LR with z itself gives the
input back (the network is invertible). A new noise sample changes z and keeps LR:

- ``perturb``: ``z + epsilon * n``, n ~ N(0, I) (z grows in variance with epsilon);
- ``resample``: ``m + sqrt(1 - epsilon^2) (z - m) + epsilon s n``, with m, s the mean and
  standard deviation of each z channel over the image: at epsilon 1 a fresh draw with z's
  channel statistics;
- ``residual`` (this project's design): z split into the latent of the image's denoised
  estimate, z_d = encode(denoise(x)), and the residual r = z - z_d that the noise adds;
  ``z_d + sqrt(1 - epsilon^2) r + epsilon s n`` with s the root mean square of r around each
  latent pixel (a Gaussian window of LOCAL_SIGMA latent pixels), so that where and how
  strongly the noise acts is kept while its realisation is new.

At epsilon 0 every mode decodes the input itself (the invertibility check of the tests).
n is the image's latent field (core.denoise.latent_field: draw ``sample`` of the seed), so
a sample is the same whole or tiled, and tiles are run and blended by core.tiling as for
denoising. Measured against real noise in docs/noise_generation.md.
"""
import math
from dataclasses import dataclass
from typing import Optional, Protocol, Union

import cv2
import numpy as np

from core.contract import NOISE_MODES, Geometry
from core.denoise import latent_field, padded_batch, to_nchw_float
from core.tiling import DEFAULT_MAX_MEMORY, DEFAULT_OVERLAP, check_tiling, run_tiled

# Width of the local statistics of ``residual``, in latent pixels (scale 4: 8 image pixels):
# about the size over which the noise level of a photo changes with its content.
LOCAL_SIGMA = 2.0


class LatentBackend(Protocol):
    """Runs the network's two directions on numpy arrays: ``encode`` noisy [N, C, H, W] ->
    latent [N, latent channels, H/s, W/s] and ``decode`` back (core.denoise.DygraphBackend)."""
    name: str
    geometry: Geometry
    bytes_per_pixel: float

    def encode(self, noisy: np.ndarray) -> np.ndarray: ...

    def decode(self, latent: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class NoiseOptions:
    """mode, epsilon: the manipulation (module docstring); seed: the latent field's seed;
    tile, tile_overlap, max_memory: as core.denoise.DenoiseOptions."""
    mode: str = 'perturb'
    epsilon: float = 0.1
    seed: int = 0
    tile: Union[int, str, None] = 'auto'
    tile_overlap: int = DEFAULT_OVERLAP
    max_memory: int = DEFAULT_MAX_MEMORY

    def check(self, size_multiple: int = 1) -> None:
        """Raise ValueError naming the option that cannot work."""
        if self.mode not in NOISE_MODES:
            raise ValueError(f'mode must be one of {", ".join(NOISE_MODES)}, got {self.mode!r}')
        high = math.inf if self.mode == 'perturb' else 1.0
        if not (math.isfinite(self.epsilon) and 0 <= self.epsilon <= high):
            raise ValueError(f'epsilon must be a finite number in [0, {high:g}] for mode '
                             f'{self.mode}, got {self.epsilon}' if high < math.inf else
                             f'epsilon must be a finite number >= 0, got {self.epsilon}')
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f'seed must be a non-negative integer, got {self.seed}')
        check_tiling(None if self.tile == 'auto' else self.tile, self.tile_overlap, size_multiple)


def _local_rms(r: np.ndarray) -> np.ndarray:
    """Root mean square of each channel of r [N, C, h, w] in a Gaussian window around each
    latent pixel."""
    squares = (r * r).reshape((-1,) + r.shape[2:])
    blurred = [cv2.GaussianBlur(plane, (0, 0), LOCAL_SIGMA, borderType=cv2.BORDER_REFLECT_101)
               for plane in squares]
    return np.sqrt(np.maximum(np.stack(blurred), 0.0)).reshape(r.shape)


def new_latent(z: np.ndarray, n: np.ndarray, mode: str, epsilon: float,
               z_denoised: Optional[np.ndarray] = None) -> np.ndarray:
    """z [N, C, h, w] after the manipulation ``mode`` with fresh N(0, I) draws ``n`` of its
    shape; ``residual`` needs ``z_denoised``, the latent of the denoised image."""
    eps = np.float32(epsilon)
    if mode == 'perturb':
        return z + eps * n
    keep = np.float32(math.sqrt(max(0.0, 1.0 - epsilon * epsilon)))
    if mode == 'resample':
        mean, std = z.mean(axis=(2, 3), keepdims=True), z.std(axis=(2, 3), keepdims=True)
        return mean + keep * (z - mean) + eps * std * n
    residual = z - z_denoised
    return z_denoised + keep * residual + eps * _local_rms(residual) * n


def generate_array(backend: LatentBackend, images: np.ndarray, options: NoiseOptions = NoiseOptions(),
                   sample: int = 0) -> np.ndarray:
    """Noise sample ``sample`` of NHWC (or HWC) noisy ``images`` (float in [0, 1] or 8/16-bit)
    -> float32 in the same layout (not clipped)."""
    geometry, multiple = backend.geometry, backend.geometry.size_multiple
    prepared = padded_batch(backend, images, options)
    padded = prepared.padded

    def generate_region(rows: slice, cols: slice) -> np.ndarray:
        latent = backend.encode(to_nchw_float(padded[:, rows, cols]))
        lr_image, z = latent[:, :geometry.channel_out], latent[:, geometry.channel_out:]
        field = [np.broadcast_to(latent_field(int(options.seed), 2 * int(sample) + k, z.shape[1],
                                              range(rows.start // multiple, rows.stop // multiple),
                                              range(cols.start // multiple, cols.stop // multiple)),
                                 z.shape) for k in range(2 if options.mode == 'residual' else 1)]
        z_denoised = None
        if options.mode == 'residual':  # the paper's denoising, with its own draw of the field
            denoised = backend.decode(np.concatenate([lr_image, field[1]], axis=1))
            z_denoised = backend.encode(denoised)[:, geometry.channel_out:]
        z = new_latent(z, field[0], options.mode, options.epsilon, z_denoised)
        image = backend.decode(np.concatenate([lr_image, z], axis=1))[:, :geometry.channel_in]
        return image.transpose(0, 2, 3, 1)

    return prepared.crop(run_tiled(generate_region, padded.shape[1], padded.shape[2], prepared.tile,
                                   options.tile_overlap, multiple))

