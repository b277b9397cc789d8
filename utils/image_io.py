"""Image reading and writing, in one place.

Images inside the project are float32 HWC RGB arrays in [0, 1], or the file's own 8/16-bit
integers where memory matters (a large photo is held once in its own type). Files may be 8-
or 16-bit PNG/JPEG/TIFF/BMP, grey, RGB or RGBA; grey becomes 3 channels (``Photo.grey``
says it was grey, and ``write_image`` writes a 2-D image grey). Reading
is as a viewer shows the file: the EXIF orientation is applied. The declared size is read
from the header before anything is decoded, and an image above the pixel limit is refused
by name (a header can claim any size; decoding it would exhaust memory). ``read_photo``
keeps the alpha channel for writing it back unchanged; the other readers drop it. OpenCV
works in BGR, so the conversion happens only here.
"""
import os
import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from utils.durable import atomic_write_bytes

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
# Images above this many pixels are refused unless a caller raises it (--max_megapixels).
DEFAULT_MAX_PIXELS = 300_000_000
ORIENTATION_TAG = 0x0112


class ImageReadError(IOError):
    """An image file is missing, unreadable, truncated or above the pixel limit."""


def is_image_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str) -> List[str]:
    """Sorted paths of the image files directly inside ``folder``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'image folder not found: {folder}')
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if is_image_file(name) and os.path.isfile(os.path.join(folder, name)))


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header declares: its stored size and EXIF orientation (1-8, 1 upright)."""
    width: int
    height: int
    orientation: int = 1
    mode: str = ''  # PIL's name of the pixel layout, e.g. 'RGB', 'L', 'LA', 'I;16'

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def shown_size(self) -> Tuple[int, int]:
        """(width, height) as a viewer shows the image (orientations 5-8 swap them)."""
        return (self.height, self.width) if self.orientation >= 5 else (self.width, self.height)


def read_header(path: str) -> ImageHeader:
    """The size and orientation a file declares, read without decoding its pixels."""
    if not os.path.isfile(path):
        raise ImageReadError(f'image file not found: {path}')
    limit = Image.MAX_IMAGE_PIXELS
    try:
        # PIL's decompression-bomb guard is for decoding, which PIL does not do here; the
        # size is checked against the caller's limit instead.
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with Image.open(path) as image:
                width, height = image.size
                orientation = _orientation(image)
                mode = image.mode
    except (OSError, ValueError, SyntaxError):
        raise ImageReadError(f'cannot decode image (unreadable or truncated): {path}') from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return ImageHeader(width, height, orientation, mode)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation still to apply after decoding, from the header only (PIL's getexif
    may decode a PNG to find it). TIFF decoders (libtiff, in OpenCV and PIL) apply a TIFF's
    orientation tag themselves, so for a TIFF there is nothing left to apply."""
    if image.format == 'TIFF' or not image.info.get('exif'):
        return 1
    exif = Image.Exif()
    exif.load(image.info['exif'])
    value = exif.get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The stored HWC (or HW) ``pixels`` as a viewer shows them for EXIF ``orientation``."""
    if orientation in (5, 6, 7, 8):
        pixels = np.swapaxes(pixels, 0, 1)  # transpose
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation in (2, 3):
        pixels = pixels[:, ::-1]
    if orientation in (3, 4):
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels)


@dataclass
class Photo:
    """An image file's pixels as a viewer shows them: ``pixels`` HWC RGB in the file's integer
    type (a grey image's one channel three times), ``alpha`` HW of the same type or None,
    ``depth`` 8 or 16, ``grey`` whether the file is grey (with or without alpha)."""
    pixels: np.ndarray
    alpha: Optional[np.ndarray]
    depth: int
    grey: bool = False


def megapixels(pixels: float) -> str:
    """'3600 MP', '12.0 MP', '0.0072 MP': whole numbers from 100 MP, else 3 digits."""
    value = pixels / 1e6
    return f'{value:.0f} MP' if value >= 100 else f'{value:.3g} MP'


def check_pixel_limit(path: str, header: ImageHeader, max_pixels: int) -> None:
    if header.pixels > max_pixels:
        raise ImageReadError(f'{path} is {header.width} x {header.height} = '
                             f'{megapixels(header.pixels)}, above the limit of '
                             f'{megapixels(max_pixels)} (raise it with --max_megapixels)')


def read_photo(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """The pixels and alpha of ``path`` (``Photo``); the header is checked against
    ``max_pixels`` before anything is decoded."""
    header = read_header(path)
    check_pixel_limit(path, header, max_pixels)
    img = _decode(path)
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f'unsupported pixel type {img.dtype} in {path}: '
                             'expected 8- or 16-bit integers')
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels not in (1, 3, 4):
        raise ImageReadError(f'unsupported channel count {channels} in {path}: expected 1, 3 or 4')
    img = orient(img, header.orientation)
    alpha = img[:, :, 3].copy() if channels == 4 else None
    pixels = np.repeat(img, 3, axis=2) if channels == 1 else img[:, :, 2::-1].copy()
    grey = channels == 1 or header.mode in ('LA', 'La')  # OpenCV decodes grey + alpha as BGRA
    return Photo(pixels, alpha, 16 if img.dtype == np.uint16 else 8, grey)


def _decode(path: str) -> np.ndarray:
    """The file's pixels as OpenCV decodes them (BGR or BGRA, or grey), in their own type."""
    data = np.fromfile(path, dtype=np.uint8)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:
        img = None
    if img is None and path.lower().endswith(('.tif', '.tiff')):
        # OpenCV's TIFF decoder fails on the transposing orientations (5-8); PIL's applies them.
        try:
            with Image.open(path) as image:
                if image.mode in ('L', 'RGB', 'RGBA'):
                    img = np.asarray(image)
                    img = img[:, :, [2, 1, 0, 3][:img.shape[2]]] if img.ndim == 3 else img
        except (OSError, ValueError):
            img = None
    if img is None:
        raise ImageReadError(f'cannot decode image (unreadable or truncated): {path}')
    return img


def read_image_raw(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """RGB HWC array in the file's own dtype (uint8 or uint16), alpha dropped."""
    return read_photo(path, max_pixels).pixels


def read_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """float32 HWC RGB image in [0, 1]."""
    img, _ = read_image_with_depth(path, max_pixels)
    return img


def read_image_with_depth(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[np.ndarray, int]:
    """(float32 HWC RGB image in [0, 1], bit depth of the file: 8 or 16)."""
    raw = read_image_raw(path, max_pixels)
    return to_float(raw), 16 if raw.dtype == np.uint16 else 8


def to_float(pixels: np.ndarray) -> np.ndarray:
    """8/16-bit pixels as float32 in [0, 1] (divided by the type's peak); floats as float32."""
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    return pixels.astype(np.float32, copy=False)


def quantize(img: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Clip a [0, 1] float image and round it to uint8 or uint16 (as the SIDD benchmark does)."""
    if bit_depth not in (8, 16):
        raise ValueError(f'bit depth must be 8 or 16, got {bit_depth}')
    peak = 2 ** bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scaled = np.clip(img, 0.0, 1.0)
    scaled *= peak
    return np.rint(scaled, out=scaled).astype(dtype)


def write_image(path: str, img: np.ndarray, bit_depth: int = 8, alpha: Optional[np.ndarray] = None) -> None:
    """Write an RGB image: float in [0, 1] (quantised to ``bit_depth``) or uint8/uint16 as is,
    with ``alpha`` (HW, the image's integer type) as a fourth channel when given.

    Atomically (utils/durable.py): a killed or failed write never leaves a partial image under
    ``path``; a full disk raises ``DiskFullError`` naming ``path``."""
    if img.dtype not in (np.uint8, np.uint16):
        img = quantize(img, bit_depth)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]
        if alpha is not None:
            img = np.concatenate([img, alpha.astype(img.dtype)[:, :, None]], axis=2)
    ext = os.path.splitext(path)[1] or '.png'
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(img))
    if not ok:
        raise IOError(f'cannot encode image for {path}')
    atomic_write_bytes(path, encoded.tobytes())
