"""InvDN in a single ``forward(noisy, z)``, the entry point of the exported static program.

An exported program has one entry point and no random ops we control, so the denoising
pass is one call and the caller supplies ``z``. The layers, parameter names and code are
InvNet's (``InvNet.denoise``): a state dict of one loads into the other.
"""
import paddle

from networks.InvDN_model import InvNet


class InvNetOneForward(InvNet):
    """``forward(noisy [N, 3, H, W], z [K*N, latent_channels - 3, H/4, W/4]) -> [K*N, 3, H, W]``.

    ``z`` is standard normal (times the Gaussian scale) at the *latent* resolution, as the
    official test draws it; the earlier Paddle reproduction average-pooled full-resolution
    noise, which shrinks its standard deviation to 1/4.
    """

    def forward(self, noisy: paddle.Tensor, z: paddle.Tensor) -> paddle.Tensor:
        return self.denoise(noisy, z)
