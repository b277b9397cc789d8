"""Image reading and writing, in one place.

Images inside the project are float32 HWC RGB arrays in [0, 1]. Files may be 8- or
16-bit PNG/JPEG/TIFF, grayscale, RGB or RGBA; grayscale becomes 3 channels and
alpha is dropped. OpenCV works in BGR, so the conversion happens only here.
"""
import os
from typing import List, Tuple

import cv2
import numpy as np

from utils.durable import atomic_write_bytes

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')


class ImageReadError(IOError):
    """An image file is missing, unreadable or truncated."""


def is_image_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str) -> List[str]:
    """Sorted paths of the image files directly inside ``folder``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'image folder not found: {folder}')
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if is_image_file(name) and os.path.isfile(os.path.join(folder, name)))


def read_image_raw(path: str) -> np.ndarray:
    """RGB HWC array in the file's own dtype (uint8 or uint16)."""
    if not os.path.isfile(path):
        raise ImageReadError(f'image file not found: {path}')
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f'cannot decode image (unreadable or truncated): {path}')
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f'unsupported pixel type {img.dtype} in {path}: '
                             'expected 8- or 16-bit integers')
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 1:
        return np.repeat(img, 3, axis=2)
    if channels == 3:
        return img[:, :, ::-1].copy()
    if channels == 4:
        return img[:, :, 2::-1].copy()
    raise ImageReadError(f'unsupported channel count {channels} in {path}: expected 1, 3 or 4')


def read_image(path: str) -> np.ndarray:
    """float32 HWC RGB image in [0, 1]."""
    img, _ = read_image_with_depth(path)
    return img


def read_image_with_depth(path: str) -> Tuple[np.ndarray, int]:
    """(float32 HWC RGB image in [0, 1], bit depth of the file: 8 or 16)."""
    raw = read_image_raw(path)
    depth = 16 if raw.dtype == np.uint16 else 8
    return raw.astype(np.float32) / float(2 ** depth - 1), depth


def quantize(img: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Clip a [0, 1] float image and round it to uint8 or uint16 (as the SIDD benchmark does)."""
    if bit_depth not in (8, 16):
        raise ValueError(f'bit depth must be 8 or 16, got {bit_depth}')
    peak = 2 ** bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.round(np.clip(img, 0.0, 1.0) * peak).astype(dtype)


def write_image(path: str, img: np.ndarray, bit_depth: int = 8) -> None:
    """Write an RGB image: float in [0, 1] (quantised to ``bit_depth``) or uint8/uint16 as is.

    Atomically (utils/durable.py): a killed or failed write never leaves a partial image under
    ``path``; a full disk raises ``DiskFullError`` naming ``path``."""
    if img.dtype not in (np.uint8, np.uint16):
        img = quantize(img, bit_depth)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]
    ext = os.path.splitext(path)[1] or '.png'
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(img))
    if not ok:
        raise IOError(f'cannot encode image for {path}')
    atomic_write_bytes(path, encoded.tobytes())
