"""Self-made SIDD-like data for tests and demos, from photos that ship with scikit-image.

Writes the layouts the project reads, so every step runs without the real SIDD:

* ``medium``:    a SIDD-Medium-like source tree ``RESULT_DIR/Data/<scene>/<id>_{GT,NOISY}_SRGB_010.PNG``
                 (input of generate_patches_sidd.py);
* ``patches``:   training patch folders ``RESULT_DIR/{GT,Noisy,LQ}/0_<k>.PNG``;
* ``mat``:       ``RESULT_DIR/ValidationGtBlocksSrgb.mat`` and ``RESULT_DIR/ValidationNoisyBlocksSrgb.mat``
                 (uint8 [images, blocks, size, size, 3], MATLAB v5 or v7.3/HDF5; input of
                 extract_valid_patches_sidd.py);
* ``sidd_mini``: ``RESULT_DIR/train_mini/{GT,Noisy,LQ}`` and ``RESULT_DIR/val_mini/{GT,Noisy}``, the layout of
                 the real SIDD_mini used by TIPC;
* ``dnd``:       a DND-like sRGB benchmark folder: ``RESULT_DIR/info.mat`` (v7.3, the bounding
                 boxes) and ``RESULT_DIR/images_srgb/%04d.mat`` (input of test_denoising_dnd.py).

Noise is signal dependent, as in a camera: the sRGB gamma is undone, Poisson shot noise and
Gaussian read noise are added in linear space with a seeded level, and the gamma is re-applied.
"""
import os
from functools import lru_cache
from typing import List, Tuple

import cv2
import numpy as np

from dataloaders.sidd_mat import MAT_KEYS
from apps import cli
from utils.image_io import write_image
from utils.matlab_imresize import imresize

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field',
          'retina', 'stereo_motorcycle')
SHOT_RANGE = (1e-3, 2e-2)  # Poisson gain in linear intensity units (variance = gain * signal)
READ_RANGE = (2e-3, 1e-2)  # Gaussian read-noise standard deviation in linear units


@lru_cache(maxsize=1)
def load_photos() -> Tuple[np.ndarray, ...]:
    """The bundled scikit-image colour photos, uint8 HWC RGB."""
    import skimage.data

    photos = []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        photos.append(img[0] if isinstance(img, tuple) else img)  # stereo pair: left view
    return tuple(photos)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (IEC 61966-2-1)."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def sample_noise_level(rng: np.random.Generator) -> Tuple[float, float]:
    """(shot gain, read sigma), log-uniform in SHOT_RANGE and READ_RANGE."""
    shot = float(np.exp(rng.uniform(*np.log(SHOT_RANGE))))
    read = float(np.exp(rng.uniform(*np.log(READ_RANGE))))
    return shot, read


def add_camera_noise(clean: np.ndarray, rng: np.random.Generator, shot: float, read: float) -> np.ndarray:
    """Poisson-Gaussian noise added in linear space to a float sRGB image in [0, 1]."""
    linear = srgb_to_linear(clean.astype(np.float64))
    noisy = shot * rng.poisson(linear / shot) + rng.normal(0.0, read, size=linear.shape)
    return linear_to_srgb(np.clip(noisy, 0.0, 1.0)).astype(np.float32)


def clean_crop(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random, randomly flipped height x width crop of a bundled photo, float32 in [0, 1]."""
    photo = load_photos()[rng.integers(len(PHOTOS))]
    h, w = photo.shape[:2]
    zoom = max(height / h, width / w, 1.0)
    if zoom > 1.0:  # small photo: enlarge it so that the crop fits
        photo = cv2.resize(photo, (int(np.ceil(w * zoom)), int(np.ceil(h * zoom))),
                           interpolation=cv2.INTER_CUBIC)
        h, w = photo.shape[:2]
    top, left = rng.integers(0, h - height + 1), rng.integers(0, w - width + 1)
    crop = photo[top:top + height, left:left + width]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop.astype(np.float32) / 255.0


def make_pair(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """(GT, Noisy) uint8 HWC RGB images of one synthetic scene."""
    gt = clean_crop(rng, height, width)
    gt = np.round(gt * 255.0) / 255.0  # the noise is drawn around the stored 8-bit GT
    noisy = add_camera_noise(gt, rng, *sample_noise_level(rng))
    return np.round(gt * 255).astype(np.uint8), np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def make_medium_tree(data_dir: str, num_scenes: int = 4, height: int = 600, width: int = 800,
                     seed: int = 0) -> List[str]:
    """SIDD-Medium-like ``data_dir/<scene>/<id>_{GT,NOISY}_SRGB_010.PNG``; returns the scene folders."""
    scenes = []
    for k in range(num_scenes):
        gt, noisy = make_pair(np.random.default_rng([seed, k]), height, width)
        scene_id = f'{k + 1:04d}'
        scene = os.path.join(data_dir, f'{scene_id}_001_SYN_00100_00060_3200_L')
        write_image(os.path.join(scene, f'{scene_id}_GT_SRGB_010.PNG'), gt)
        write_image(os.path.join(scene, f'{scene_id}_NOISY_SRGB_010.PNG'), noisy)
        scenes.append(scene)
    return scenes


def make_patch_folders(out_dir: str, num_pairs: int = 10, size: int = 512, seed: int = 0,
                       with_lq: bool = True, scale: int = 4) -> None:
    """Training layout ``out_dir/{GT,Noisy[,LQ]}/0_<k>.PNG`` (LQ = MATLAB bicubic GT / scale)."""
    for k in range(num_pairs):
        gt, noisy = make_pair(np.random.default_rng([seed, k]), size, size)
        name = f'0_{k}.PNG'
        write_image(os.path.join(out_dir, 'GT', name), gt)
        write_image(os.path.join(out_dir, 'Noisy', name), noisy)
        if with_lq:
            write_image(os.path.join(out_dir, 'LQ', name), imresize(gt.astype(np.float32) / 255.0, 1 / scale))


def validation_blocks(num_images: int = 2, num_blocks: int = 4, size: int = 256,
                      seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(GT, Noisy) uint8 [images, blocks, size, size, 3]: blocks of one noisy scene per image."""
    gt_blocks = np.empty((num_images, num_blocks, size, size, 3), np.uint8)
    noisy_blocks = np.empty_like(gt_blocks)
    for i in range(num_images):
        rng = np.random.default_rng([seed, 1000 + i])
        gt, noisy = make_pair(rng, 2 * size, 2 * size)
        for b in range(num_blocks):
            top, left = rng.integers(0, size + 1, size=2)
            gt_blocks[i, b] = gt[top:top + size, left:left + size]
            noisy_blocks[i, b] = noisy[top:top + size, left:left + size]
    return gt_blocks, noisy_blocks


MATLAB_CLASSES = {'uint8': 'uint8', 'float64': 'double', 'float32': 'single'}


def write_matlab_header(path: str) -> None:
    """The 512-byte user block of a v7.3 file holds the MAT-file header MATLAB writes."""
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: make_synthetic_sidd.py HDF5 schema 1.00 .'
    with open(path, 'r+b') as f:
        f.write(header.ljust(116) + b'\x00' * 8 + b'\x00\x02' + b'IM' + b'\x00' * (512 - 128))


def write_mat(path: str, key: str, array: np.ndarray, mat_format: str = 'v5') -> None:
    """Save ``array`` under ``key`` as MATLAB v5 (scipy) or v7.3 (HDF5, as MATLAB lays it out)."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    if mat_format == 'v5':
        import scipy.io

        scipy.io.savemat(path, {key: array}, do_compression=True)
    elif mat_format == 'v7.3':
        import h5py

        # MATLAB stores column-major: h5py sees the axes reversed.
        with h5py.File(path, 'w', userblock_size=512) as f:
            f.create_dataset(key, data=np.ascontiguousarray(array.transpose()), compression='gzip')
            f[key].attrs['MATLAB_class'] = np.bytes_(MATLAB_CLASSES[array.dtype.name])
        write_matlab_header(path)
    else:
        raise ValueError(f"mat_format must be 'v5' or 'v7.3', got {mat_format!r}")


def make_validation_mat(out_dir: str, num_images: int = 2, num_blocks: int = 4, size: int = 256,
                        seed: int = 0, mat_format: str = 'v5') -> Tuple[np.ndarray, np.ndarray]:
    """The two SIDD validation .mat files in ``out_dir``; returns the (GT, Noisy) arrays written."""
    gt, noisy = validation_blocks(num_images, num_blocks, size, seed)
    write_mat(os.path.join(out_dir, MAT_KEYS['GT'] + '.mat'), MAT_KEYS['GT'], gt, mat_format)
    write_mat(os.path.join(out_dir, MAT_KEYS['Noisy'] + '.mat'), MAT_KEYS['Noisy'], noisy, mat_format)
    return gt, noisy


def make_dnd(out_dir: str, num_images: int = 2, num_boxes: int = 3, height: int = 96,
             width: int = 128, box_size: int = 32, seed: int = 0) -> List[np.ndarray]:
    """A DND-like sRGB benchmark folder: ``info.mat`` (v7.3; ``info.boundingboxes``, a cell of
    [boxes, 4] arrays of MATLAB 1-based inclusive [row1, col1, row2, col2]) and
    ``images_srgb/%04d.mat`` (``InoisySRGB``, float in [0, 1]). Returns the boxes written."""
    import h5py

    os.makedirs(os.path.join(out_dir, 'images_srgb'), exist_ok=True)
    all_boxes = []
    for image in range(num_images):
        rng = np.random.default_rng([seed, 2000 + image])
        _, noisy = make_pair(rng, height, width)
        write_mat(os.path.join(out_dir, 'images_srgb', '%04d.mat' % (image + 1)), 'InoisySRGB',
                  noisy.astype(np.float64) / 255.0, 'v7.3')
        tops = rng.integers(0, height - box_size + 1, size=num_boxes)
        lefts = rng.integers(0, width - box_size + 1, size=num_boxes)
        all_boxes.append(np.stack([tops + 1, lefts + 1, tops + box_size, lefts + box_size], axis=1)
                         .astype(np.float64))
    path = os.path.join(out_dir, 'info.mat')
    with h5py.File(path, 'w', userblock_size=512) as f:
        references = f.create_group('#refs#')
        info = f.create_group('info')
        # A MATLAB N x 1 cell, column-major: h5py sees [1, N] object references.
        cells = info.create_dataset('boundingboxes', shape=(1, num_images), dtype=h5py.ref_dtype)
        for image, boxes in enumerate(all_boxes):
            cells[0, image] = references.create_dataset(f'b{image}', data=boxes.T).ref
    write_matlab_header(path)
    return all_boxes


def make_sidd_mini(out_dir: str, train_pairs: int = 10, train_size: int = 512, val_pairs: int = 5,
                   val_size: int = 256, seed: int = 0) -> None:
    """The SIDD_mini layout: ``train_mini/{GT,Noisy,LQ}`` and ``val_mini/{GT,Noisy}``."""
    make_patch_folders(os.path.join(out_dir, 'train_mini'), train_pairs, train_size, seed, with_lq=True)
    make_patch_folders(os.path.join(out_dir, 'val_mini'), val_pairs, val_size, seed + 1, with_lq=False)


def main(argv=None) -> None:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--layout', required=True, choices=('medium', 'patches', 'mat', 'sidd_mini', 'dnd'),
                        help='which layout to write (see above)')
    parser.add_argument('--result_dir', required=True, help='output folder (must be empty or absent)')
    parser.add_argument('--num', type=int, default=None,
                        help='scenes (medium), pairs (patches), images (mat) or train pairs (sidd_mini); '
                             'defaults: 4, 10, 2, 10')
    parser.add_argument('--size', type=int, default=None,
                        help='patch/block side (patches, mat, sidd_mini train; defaults 512, 256, 512); '
                             'medium: image height, width is 4/3 of it (default 600)')
    parser.add_argument('--blocks', type=int, default=4, help='blocks per image (mat), boxes per image (dnd)')
    parser.add_argument('--mat_format', choices=('v5', 'v7.3'), default='v5',
                        help='MATLAB file format of the mat layout')
    parser.add_argument('--seed', type=int, default=0, help='random seed (scene choice and noise)')
    args = parser.parse_args(argv)

    if os.path.isdir(args.result_dir) and os.listdir(args.result_dir):
        cli.fail(f'result folder {args.result_dir} is not empty; it is left untouched: choose a new one')
    if args.layout == 'medium':
        height = args.size or 600
        make_medium_tree(os.path.join(args.result_dir, 'Data'), args.num or 4, height, height * 4 // 3, args.seed)
    elif args.layout == 'patches':
        make_patch_folders(args.result_dir, args.num or 10, args.size or 512, args.seed)
    elif args.layout == 'mat':
        make_validation_mat(args.result_dir, args.num or 2, args.blocks, args.size or 256, args.seed, args.mat_format)
    elif args.layout == 'dnd':
        make_dnd(args.result_dir, num_images=args.num or 2, num_boxes=args.blocks, seed=args.seed)
    else:
        make_sidd_mini(args.result_dir, train_pairs=args.num or 10, train_size=args.size or 512, seed=args.seed)
    print(f'wrote the {args.layout} layout to {args.result_dir}')


if __name__ == '__main__':
    main()
