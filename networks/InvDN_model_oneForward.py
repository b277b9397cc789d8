"""InvDN in a single ``forward(noisy, z)``, for dynamic-to-static export.

An exported program has one entry point and no random ops we control, so the
denoising pass (forward, keep the low-resolution image, attach a Gaussian latent,
reverse) is one call here and the caller supplies ``z``. This subclasses InvNet:
same layers, same parameter names, so a state dict of one loads into the other.
"""
import paddle

from networks.InvDN_model import InvNet


class InvNetOneForward(InvNet):
    """``forward(noisy [N, 3, H, W], z [N, latent_channels - 3, H/4, W/4]) -> denoised``.

    ``z`` is a standard normal sample (times the Gaussian scale) at the *latent*
    resolution; the earlier Paddle reproduction fed full-resolution noise and
    average-pooled it, which shrinks its standard deviation to 1/4.
    """

    def forward(self, noisy: paddle.Tensor, z: paddle.Tensor) -> paddle.Tensor:
        latent = super().forward(noisy)
        lr_image = latent[:, :self.channel_out]
        restored = super().forward(paddle.concat([lr_image, z], axis=1), rev=True)
        return restored[:, :self.channel_in]
