"""utils/matlab_imresize.py: MATLAB bicubic resize with antialiasing."""
import numpy as np
import pytest
from PIL import Image

from utils.image_io import list_images, read_image_raw
from utils.matlab_imresize import imresize


def test_lq_of_real_sidd_matches_the_shipped_lq(sidd_mini_dir):
    """SIDD_mini's LQ was made as round(255 * imresize(GT / 255, 1/4))."""
    gt_paths = list_images(str(sidd_mini_dir / 'train_mini' / 'GT'))
    assert gt_paths
    differing, worst = 0, 0
    for path in gt_paths:
        gt = read_image_raw(path).astype(np.float32) / 255.0
        ours = np.round(np.clip(imresize(gt, 1 / 4), 0, 1) * 255).astype(np.int64)
        shipped = read_image_raw(path.replace('GT', 'LQ')).astype(np.int64)
        assert ours.shape == shipped.shape
        diff = np.abs(ours - shipped)
        differing, worst = differing + int((diff > 0).sum()), max(worst, int(diff.max()))
    assert worst <= 1 and differing <= 10, (worst, differing)


def _pil_bicubic(channel: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(channel, mode='F').resize((out_w, out_h), Image.BICUBIC))


def test_interior_matches_an_independent_bicubic_with_antialiasing():
    """Pillow uses the same kernel (a = -0.5, widened when shrinking) but a different border rule,
    so the two agree away from the borders."""
    img = np.random.default_rng(0).random((64, 80, 3)).astype(np.float32)
    down, up = imresize(img, 1 / 4), imresize(img, 2)
    assert down.shape == (16, 20, 3) and up.shape == (128, 160, 3)
    for c in range(3):
        np.testing.assert_allclose(down[2:-2, 2:-2, c], _pil_bicubic(img[..., c], 16, 20)[2:-2, 2:-2], atol=1e-5)
        np.testing.assert_allclose(up[4:-4, 4:-4, c], _pil_bicubic(img[..., c], 128, 160)[4:-4, 4:-4], atol=1e-5)


def test_borders_are_mirrored_symmetrically():
    """Outside the image MATLAB reads the mirrored image (..., 2, 1, 1, 2, ...): resizing an image
    padded that way by 8 pixels (the reach of the widened kernel at 1/4) and dropping 2 output
    pixels on each side gives the same result without any border rule coming into play."""
    img = np.random.default_rng(1).random((48, 40, 3)).astype(np.float32)
    padded = np.pad(img, ((8, 8), (8, 8), (0, 0)), mode='symmetric')
    np.testing.assert_allclose(imresize(padded, 1 / 4)[2:-2, 2:-2], imresize(img, 1 / 4), atol=1e-6)


def test_constant_stays_constant_and_size_rounds_up():
    img = np.full((37, 50, 3), 0.3, np.float32)
    out = imresize(img, 1 / 4)
    assert out.shape == (10, 13, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.3, atol=1e-6)
    assert imresize(img[..., 0], 1 / 3).shape == (13, 17)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match='HW or HWC'):
        imresize(np.zeros((2, 8, 8, 3), np.float32), 0.5)
    with pytest.raises(ValueError, match='positive'):
        imresize(np.zeros((8, 8), np.float32), 0)
