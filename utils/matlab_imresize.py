"""MATLAB-compatible ``imresize`` (bicubic, with antialiasing) in numpy.

InvDN's low-resolution target is ``imresize(GT, 1/4)`` computed this way in the official code
(``data/util.py``, ``imresize_np``). Each axis is resized separately with a dense weight
matrix: output pixel k takes the Keys cubic kernel (a = -0.5) centred at input coordinate
``k / scale + 0.5 * (1 - 1 / scale)``; when shrinking, the kernel is stretched by ``1 / scale``
(antialiasing), and indices falling outside the image are mirrored symmetrically, as MATLAB does.
"""
import math
from functools import lru_cache

import numpy as np

_KERNEL_WIDTH = 4.0  # support of the bicubic kernel, in input pixels


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    absx = np.abs(x)
    absx2, absx3 = absx ** 2, absx ** 3
    inner = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2))
    return inner + outer


@lru_cache(maxsize=32)
def resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """[out_length, in_length] float64 matrix M such that ``resized = M @ signal`` along one axis."""
    antialias = antialiasing and scale < 1
    width = _KERNEL_WIDTH / scale if antialias else _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if antialias else cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric boundary: ..., 2, 1, 1, 2, ..., n, n, n-1, ... (MATLAB and the official padding).
    period = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    source = period[(indices.astype(np.int64) - 1) % (2 * in_length)]
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), source.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


def imresize(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize an HWC (or HW) float image by ``scale`` like MATLAB ``imresize(img, scale)``.

    The output size is ``ceil(H * scale) x ceil(W * scale)``; values are not clipped or rounded.
    Heights first, then widths, as in the official code.
    """
    if img.ndim not in (2, 3):
        raise ValueError(f'imresize expects an HW or HWC image, got shape {img.shape}')
    if scale <= 0:
        raise ValueError(f'imresize scale must be positive, got {scale}')
    in_h, in_w = img.shape[:2]
    out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
    rows = resize_matrix(in_h, out_h, float(scale), antialiasing)
    cols = resize_matrix(in_w, out_w, float(scale), antialiasing)
    data = img.astype(np.float64)
    out = np.tensordot(rows, data, axes=(1, 0))                          # [out_h, in_w, ...]
    out = np.moveaxis(np.tensordot(cols, out, axes=(1, 1)), 0, 1)        # [out_h, out_w, ...]
    return out.astype(img.dtype if np.issubdtype(img.dtype, np.floating) else np.float32)
