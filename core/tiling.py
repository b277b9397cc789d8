"""Where the tiles of a large image go, how their results are blended, and how large they are.

A tile starts on a multiple of the network's downsampling factor and its size is one, so
every tile sees the Haar grid and the latent field of the whole image (core.denoise draws
z once per image and gives each tile its slice). What remains between a tiled and a
whole-image result is what the tile border cuts from the receptive field; the blend keeps
it out of the result by trusting each tile least near its inner edges
(docs/photos.md#tiling measures the difference against the overlap).
"""
import math
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

# Below this the tile border cuts the receptive field everywhere in the tile.
MIN_TILE = 64
# The smallest overlap that meets the target of at most 4 grey levels and a mean below 0.05
# against the whole image with margin (docs/photos.md#tiling).
DEFAULT_OVERLAP = 32
# What --tile auto lets the network use on one tile, in bytes.
DEFAULT_MAX_MEMORY = 3 * 2 ** 29
# --tile auto's largest tile: larger ones run no faster per pixel, and in OpenVINO bf16
# slower (docs/photos.md#speed), while memory grows with them.
AUTO_TILE = 768


def check_tiling(tile: Optional[int], overlap: int, multiple: int = 1) -> None:
    """Raise ValueError naming the flag when ``tile``/``overlap`` cannot tile an image:
    ``tile`` None (whole image) or >= MIN_TILE and a multiple of ``multiple``; ``overlap``
    in [0, tile / 2]."""
    if overlap != int(overlap) or overlap < 0:
        raise ValueError(f'tile_overlap must be a non-negative integer, got {overlap}')
    if tile is None:
        return
    if tile != int(tile) or tile < MIN_TILE:
        raise ValueError(f'tile must be at least {MIN_TILE} pixels (smaller tiles cut the '
                         f"network's receptive field everywhere), got {tile}")
    if tile % multiple:
        raise ValueError(f"tile must be a multiple of the network's downsampling factor "
                         f'{multiple}, got {tile} (e.g. {tile // multiple * multiple})')
    if 2 * overlap > tile:
        raise ValueError(f'tile_overlap must be at most half the tile ({tile // 2} for tile {tile}), '
                         f'got {overlap}')


def tile_layout(size: int, tile: int, overlap: int, multiple: int) -> Tuple[List[int], int]:
    """(start offsets, tile length) along an axis of ``size`` (a multiple of ``multiple``):
    the fewest tiles of at most ``tile`` pixels that overlap by at least ``overlap``, all of
    one length and spread evenly, so that no tile is mostly a repeat of its neighbour; every
    start and the length are multiples of ``multiple``."""
    if size <= tile:
        return [0], size
    overlap = -(-overlap // multiple) * multiple
    count = math.ceil((size - overlap) / (tile - overlap))
    length = min(tile, -(-math.ceil((size + (count - 1) * overlap) / count) // multiple) * multiple)
    steps = (size - length) // multiple
    return [steps * i // (count - 1) * multiple for i in range(count)], length


def blend_weights(start: int, length: int, size: int, overlap: int) -> np.ndarray:
    """1-D weights of a tile along one axis: 1 inside, falling to 0 towards each inner edge.

    The fall is a raised-cosine (sin^2) ramp over the middle half of the overlap; the outer
    quarter next to the edge gets weight 0, since the tile's result is least accurate there
    (the border cuts its receptive field). Two tiles overlapping by exactly ``overlap``
    have ramps that sum to 1; other overlaps are normalised by the weight sum.
    """
    weights = np.ones(length, dtype=np.float32)
    trim, ramp_len = overlap // 4, overlap - 2 * (overlap // 4)
    if ramp_len <= 0:
        return weights
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len) ** 2
    rising = np.concatenate([np.zeros(trim, np.float32), ramp, np.ones(length, np.float32)])[:length]
    if start > 0:
        weights *= rising
    if start + length < size:
        weights *= rising[::-1]
    return weights


def auto_tile(height: int, width: int, bytes_per_pixel: float, budget: float, multiple: int,
              overlap: int, largest: int = AUTO_TILE) -> Optional[int]:
    """None (the whole image) when a ``height`` x ``width`` image is at most ``largest`` on
    each side and fits ``budget`` bytes at ``bytes_per_pixel`` of working memory; else the
    largest square tile (a multiple of ``multiple``, at least MIN_TILE and 2 * ``overlap``)
    that is at most ``largest`` and fits."""
    if max(height, width) <= largest and height * width * bytes_per_pixel <= budget:
        return None
    side = min(largest, int(math.sqrt(budget / bytes_per_pixel))) // multiple * multiple
    floor = -(-max(MIN_TILE, 2 * overlap) // multiple) * multiple
    return max(side, floor)


def resolve_tile(tile: object, height: int, width: int, bytes_per_pixel: float, budget: float,
                 multiple: int, overlap: int) -> Optional[int]:
    """The tile size for a padded ``height`` x ``width`` image: ``tile`` 'auto' resolved by
    ``auto_tile``; None (the whole image) when the tile covers it."""
    if tile == 'auto':
        tile = auto_tile(height, width, bytes_per_pixel, budget, multiple, overlap)
    if tile is not None and max(height, width) <= tile:
        return None
    return tile


def tile_regions(height: int, width: int, tile: Optional[int], overlap: int, multiple: int
                 ) -> Iterator[Tuple[slice, slice]]:
    """(rows, cols) of each tile of a ``height`` x ``width`` image (multiples of ``multiple``);
    one region, the whole image, when ``tile`` is None."""
    if tile is None:
        yield slice(0, height), slice(0, width)
        return
    tops, tile_h = tile_layout(height, tile, overlap, multiple)
    lefts, tile_w = tile_layout(width, tile, overlap, multiple)
    for top in tops:
        for left in lefts:
            yield slice(top, top + tile_h), slice(left, left + tile_w)


def run_tiled(compute: Callable[[slice, slice], np.ndarray], height: int, width: int,
              tile: Optional[int], overlap: int, multiple: int) -> np.ndarray:
    """The [N, height, width, C] result of ``compute(rows, cols)`` -> [N, h, w, C] run on each
    tile (tile_regions) and blended with ``blend_weights``; ``compute`` of the whole image
    when ``tile`` is None."""
    output = weight_sum = None
    for rows, cols in tile_regions(height, width, tile, overlap, multiple):
        result = compute(rows, cols)
        if tile is None:
            return result
        if output is None:
            output = np.zeros((result.shape[0], height, width, result.shape[3]), dtype=np.float32)
            weight_sum = np.zeros((height, width), dtype=np.float32)
        weights = np.outer(blend_weights(rows.start, rows.stop - rows.start, height, overlap),
                           blend_weights(cols.start, cols.stop - cols.start, width, overlap))
        output[:, rows, cols] += result * weights[None, :, :, None]
        weight_sum[rows, cols] += weights
    return output / weight_sum[None, :, :, None]
