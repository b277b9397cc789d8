"""InvDN losses and the training objective (official ``codes/models/modules/loss.py``
and ``InvDN_model.optimize_parameters``).

The objective: the forward pass must produce the clean low-resolution image LQ in
its first channels (``l_forw_fit``), and the reverse pass from [LR, z ~ N(0, 1)] must
reconstruct the clean image GT (``l_back_rec``, plus the gradient and SSIM terms that
the official ``loss_backward`` adds).
"""
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

import utils.console  # noqa: F401 -- before Paddle, so that its import stays quiet
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from config import paper_default

LOSS_TYPES = ('l2', 'l1', 'l_log')


class ReconstructionLoss(nn.Layer):
    """Per-image sum over C, H, W, then mean over the batch.

    'l2': squared error; 'l1': Charbonnier sqrt(d^2 + eps); 'l_log': -log(1 - |d| + 1e-6).
    """

    def __init__(self, losstype: str = 'l2', eps: float = 1e-3):
        super().__init__()
        if losstype not in LOSS_TYPES:
            raise ValueError(f'unknown reconstruction loss type {losstype!r}; '
                             f'expected one of {list(LOSS_TYPES)}')
        self.losstype = losstype
        self.eps = eps

    def forward(self, x: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        diff = x - target
        if self.losstype == 'l2':
            per_pixel = diff * diff
        elif self.losstype == 'l1':
            per_pixel = paddle.sqrt(diff * diff + self.eps)
        else:
            per_pixel = -paddle.log(1 - paddle.abs(diff) + 1e-6)
        return paddle.mean(paddle.sum(per_pixel, axis=[1, 2, 3]))


def sobel_filters(channels: int) -> Tuple[np.ndarray, np.ndarray]:
    """Depthwise Sobel filters [channels, 1, 3, 3]: horizontal and vertical derivative."""
    horizontal = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)
    vertical = horizontal.T.copy()
    return (np.tile(horizontal, (channels, 1, 1, 1)), np.tile(vertical, (channels, 1, 1, 1)))


class Gradient_Loss(nn.Layer):
    """Mean absolute difference of the Sobel responses (zero padding 1), both directions summed."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.channels = channels
        horizontal, vertical = sobel_filters(channels)
        self.register_buffer('sobel_h', paddle.to_tensor(horizontal), persistable=False)
        self.register_buffer('sobel_v', paddle.to_tensor(vertical), persistable=False)

    def _sobel(self, x: paddle.Tensor, weight: paddle.Tensor) -> paddle.Tensor:
        return F.conv2d(x, weight, padding=1, groups=self.channels)

    def forward(self, x: paddle.Tensor, y: paddle.Tensor) -> paddle.Tensor:
        l_h = F.l1_loss(self._sobel(x, self.sobel_h), self._sobel(y, self.sobel_h))
        l_v = F.l1_loss(self._sobel(x, self.sobel_v), self._sobel(y, self.sobel_v))
        return l_h + l_v


class SSIM_Loss(nn.Layer):
    """Per-pixel clip((1 - SSIM) / 2, 0, 1) with 3x3 mean windows over a reflection-padded image."""

    def __init__(self):
        super().__init__()
        self.C1 = 0.01 ** 2
        self.C2 = 0.03 ** 2

    @staticmethod
    def _mean3x3(x: paddle.Tensor) -> paddle.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=1)

    def forward(self, x: paddle.Tensor, y: paddle.Tensor) -> paddle.Tensor:
        x = F.pad(x, [1, 1, 1, 1], mode='reflect')
        y = F.pad(y, [1, 1, 1, 1], mode='reflect')
        mu_x, mu_y = self._mean3x3(x), self._mean3x3(y)
        sigma_x = self._mean3x3(x * x) - mu_x * mu_x
        sigma_y = self._mean3x3(y * y) - mu_y * mu_y
        sigma_xy = self._mean3x3(x * y) - mu_x * mu_y
        ssim_n = (2 * mu_x * mu_y + self.C1) * (2 * sigma_xy + self.C2)
        ssim_d = (mu_x * mu_x + mu_y * mu_y + self.C1) * (sigma_x + sigma_y + self.C2)
        return paddle.clip((1 - ssim_n / ssim_d) / 2, 0, 1)


class InvDNLoss(nn.Layer):
    """The InvDN training objective, as the official ``optimize_parameters``/``loss_backward``.

    total = l_forw_fit + l_back_rec + l_grad_back + l_ssim_back with
      l_forw_fit  = lambda_fit_forw * forw(model(noisy)[:, :3], lq)
      x_samples   = model(concat(model(noisy)[:, :3], gaussian_scale * z), rev=True)[:, :3]
      l_back_rec  = lambda_rec_back * back(gt, x_samples)
      l_grad_back = lambda_grad_back * lambda_rec_back * Gradient_Loss(gt, x_samples)
      l_ssim_back = lambda_ssim_back * lambda_rec_back * mean(SSIM_Loss(gt, x_samples))
    The official code fixes lambda_grad_back = 0.1 and lambda_ssim_back = 1; setting both
    to 0 gives the earlier Paddle reproduction's objective.
    """

    # The paper's settings, from the configuration schema (config.SCHEMA).
    OPTIONS = ('lambda_fit_forw', 'lambda_rec_back', 'lambda_grad_back', 'lambda_ssim_back',
               'pixel_criterion_forw', 'pixel_criterion_back', 'gaussian_scale')

    def __init__(self, lambda_fit_forw: float = paper_default('train.lambda_fit_forw'),
                 lambda_rec_back: float = paper_default('train.lambda_rec_back'),
                 lambda_grad_back: float = paper_default('train.lambda_grad_back'),
                 lambda_ssim_back: float = paper_default('train.lambda_ssim_back'),
                 pixel_criterion_forw: str = paper_default('train.pixel_criterion_forw'),
                 pixel_criterion_back: str = paper_default('train.pixel_criterion_back'),
                 gaussian_scale: float = paper_default('train.gaussian_scale')):
        super().__init__()
        self.lambda_fit_forw = lambda_fit_forw
        self.lambda_rec_back = lambda_rec_back
        self.lambda_grad_back = lambda_grad_back
        self.lambda_ssim_back = lambda_ssim_back
        self.gaussian_scale = gaussian_scale
        self.rec_forw = ReconstructionLoss(pixel_criterion_forw)
        self.rec_back = ReconstructionLoss(pixel_criterion_back)
        self.grad_back = Gradient_Loss()
        self.ssim_back = SSIM_Loss()

    @classmethod
    def from_config(cls, train_cfg: Any) -> 'InvDNLoss':
        """From the ``train`` section of the config (Config or plain dict); absent keys take
        the paper's values, and ``gaussian_scale: ~`` means 1 as in the official code."""
        options = train_cfg.to_dict() if hasattr(train_cfg, 'to_dict') else train_cfg
        if not isinstance(options, Mapping):
            raise TypeError(f'train config must be a mapping, got {type(train_cfg).__name__}')
        defaults = {key: paper_default(f'train.{key}') for key in cls.OPTIONS}
        kwargs = {}
        for key, default in defaults.items():
            value = options.get(key, default)
            if value is None and key == 'gaussian_scale':
                value = default
            if value is None:
                raise ValueError(f'train.{key} is empty; expected a value like {default!r}')
            kwargs[key] = value if isinstance(default, str) else float(value)
        return cls(**kwargs)

    def forward(self, model: nn.Layer, noisy: paddle.Tensor, lq: paddle.Tensor,
                gt: paddle.Tensor, z: Optional[paddle.Tensor] = None
                ) -> Tuple[paddle.Tensor, Dict[str, paddle.Tensor]]:
        """``z`` (shape of the latent minus the image channels) is drawn from N(0, 1) when None.

        Channel counts come from ``lq`` and ``gt`` so a data-parallel wrapper works as well.
        """
        out = model(noisy)
        lr_image = out[:, :lq.shape[1]]
        l_forw_fit = self.lambda_fit_forw * self.rec_forw(lr_image, lq.detach())

        if z is None:
            z = paddle.randn(out[:, lq.shape[1]:].shape, dtype=out.dtype)
        x_samples = model(paddle.concat([lr_image, self.gaussian_scale * z], axis=1), rev=True)
        x_samples = x_samples[:, :gt.shape[1]]
        l_back_rec = self.lambda_rec_back * self.rec_back(gt, x_samples)
        l_grad_back = (self.lambda_grad_back * self.lambda_rec_back
                       * self.grad_back(gt, x_samples))
        l_ssim_back = (self.lambda_ssim_back * self.lambda_rec_back
                       * self.ssim_back(gt, x_samples).mean())

        total = l_forw_fit + (l_back_rec + l_grad_back + l_ssim_back)
        return total, {'l_forw_fit': l_forw_fit, 'l_back_rec': l_back_rec,
                       'l_grad_back': l_grad_back, 'l_ssim_back': l_ssim_back}
