"""PSNR and SSIM on uint8 RGB images, as the SIDD benchmark reports them; AKLD and noise
correlation for generated noise.

All take HWC (or HW) arrays with values in [0, 255] (the denoised or generated output
clipped and quantised to uint8 first, see ``utils.image_io.quantize``) and compute in float64.
"""
import math

import cv2
import numpy as np

# MATLAB ssim.m (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03.
_SSIM_KERNEL = cv2.getGaussianKernel(11, 1.5, cv2.CV_64F)
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def _prepare(img1: np.ndarray, img2: np.ndarray, crop_border: int):
    if img1.shape != img2.shape:
        raise ValueError(f'images must have the same shape, got {img1.shape} and {img2.shape}')
    if crop_border < 0:
        raise ValueError(f'crop_border must be >= 0, got {crop_border}')
    if crop_border:
        img1 = img1[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    return img1.astype(np.float64), img2.astype(np.float64)


def calculate_psnr(img1: np.ndarray, img2: np.ndarray, crop_border: int = 0) -> float:
    """PSNR in dB with data range 255; ``inf`` for identical images."""
    img1, img2 = _prepare(img1, img2, crop_border)
    mse = np.mean((img1 - img2) ** 2)
    if mse == 0:
        return float('inf')
    return 20 * math.log10(255.0 / math.sqrt(mse))


def _ssim_per_channel(img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
    """Mean SSIM of each channel of two float64 CxHxW images."""
    channels, height, width = img1.shape
    stats = np.empty((5, channels, height, width))
    stats[0], stats[1] = img1, img2
    np.multiply(img1, img1, out=stats[2])
    np.multiply(img2, img2, out=stats[3])
    np.multiply(img1, img2, out=stats[4])
    # All local statistics in one separable filtering pass over the planes stacked
    # vertically (fast: a 256x256 RGB pair takes a few milliseconds). Rows near a plane's
    # edge mix in its neighbour, but only window centres whose 11x11 window lies inside
    # the image are averaged ('valid', as MATLAB and skimage do), which drops them.
    filtered = cv2.sepFilter2D(stats.reshape(-1, width), cv2.CV_64F, _SSIM_KERNEL, _SSIM_KERNEL)
    mu1, mu2, e11, e22, e12 = filtered.reshape(stats.shape)[:, :, 5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq, sigma2_sq, sigma12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _SSIM_C1) * (2 * sigma12 + _SSIM_C2)
                / ((mu1_sq + mu2_sq + _SSIM_C1) * (sigma1_sq + sigma2_sq + _SSIM_C2)))
    return ssim_map.mean(axis=(1, 2))


def calculate_ssim(img1: np.ndarray, img2: np.ndarray, crop_border: int = 0) -> float:
    """SSIM as the reference MATLAB implementation: computed per channel, then averaged.

    Equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``. The official
    ``utils/util.py`` passes the whole 3-channel image to its per-channel routine three
    times instead of each channel once; we follow the reference definition.
    """
    img1, img2 = _prepare(img1, img2, crop_border)
    if img1.ndim == 2:
        img1, img2 = img1[:, :, None], img2[:, :, None]
    if img1.ndim != 3 or min(img1.shape[:2]) < 11:
        raise ValueError(f'SSIM needs HxW or HxWxC images of at least 11x11 pixels, '
                         f'got shape {img1.shape}')
    planes1, planes2 = img1.transpose(2, 0, 1), img2.transpose(2, 0, 1)
    return float(np.mean(_ssim_per_channel(planes1, planes2)))


# DANet (Yue et al., ECCV 2020), the AKLD of its noise generation: the local noise variance is
# the squared noise smoothed by a 7 x 7 Gaussian (OpenCV's default sigma for that size,
# reflected borders), and the variance ratio is clipped to [0.1, 10].
_AKLD_KERNEL = cv2.getGaussianKernel(7, -1, cv2.CV_64F)
_AKLD_RATIO = (0.1, 10.0)


def _local_noise_variance(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    squared = (noisy / 255.0 - clean / 255.0) ** 2
    smoothed = cv2.sepFilter2D(squared, cv2.CV_64F, _AKLD_KERNEL, _AKLD_KERNEL,
                               borderType=cv2.BORDER_REFLECT_101)
    return np.maximum(smoothed, 1e-10)


def calculate_akld(generated: np.ndarray, real: np.ndarray, clean: np.ndarray) -> float:
    """KL divergence between zero-mean Gaussians of the local variance of the generated noise
    (``generated - clean``) and of the real noise (``real - clean``), averaged over pixels
    and channels (DANet's AKLD for one image; average it over images). 0 for a noise with
    the real noise's local variance everywhere; an exact copy also gives 0 (see
    ``noise_correlation``)."""
    generated, clean = _prepare(generated, clean, 0)
    real = _prepare(real, clean, 0)[0]
    ratio = np.clip(_local_noise_variance(generated, clean) / _local_noise_variance(real, clean),
                    *_AKLD_RATIO)
    return float(0.5 * np.mean(ratio - 1.0 - np.log(ratio)))


def noise_correlation(generated: np.ndarray, real: np.ndarray, clean: np.ndarray) -> float:
    """Pearson correlation of the generated noise with the real noise (both against
    ``clean``): 1 for a copy, about 0 for a new draw."""
    generated, clean = _prepare(generated, clean, 0)
    real = _prepare(real, clean, 0)[0]
    a, b = (generated - clean).ravel(), (real - clean).ravel()
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / norm) if norm else 0.0
