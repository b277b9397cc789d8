"""InvDN: the invertible denoising network (Liu et al., CVPR 2021).

The network maps a noisy image x to (LR, z): a clean low-resolution image in the
first ``channel_out`` channels and a high-frequency latent in the rest. It is built
from Haar downsampling stages, each followed by affine coupling blocks whose
subnets are small residual CNNs ("ResUnit" in the paper).

Every block is invertible and follows the FrEIA convention
``forward(x, rev=False, cal_jacobian=False)``; with ``cal_jacobian`` it also returns
its log-Jacobian determinant, computed as in the official code (coupling: sum of
log-scales divided by the batch size; Haar: a constant per sample).

Parameter names and shapes match the official PyTorch ``state_dict()`` so its
weights load without renaming.
"""
import functools
import math
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

SubnetConstructor = Callable[[int, int], nn.Layer]
Output = Union[paddle.Tensor, Tuple[paddle.Tensor, paddle.Tensor]]
ConvFunction = Callable[[paddle.Tensor, paddle.Tensor, paddle.Tensor], paddle.Tensor]

class Conv3x3(nn.Conv2D):
    """3x3 convolution (padding 1) initialised like PyTorch's ``nn.Conv2d`` default.

    PyTorch draws weights from kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), and biases from the same interval. InvDN is sensitive to this
    initialisation (the official code relies on the default), so we reproduce it.

    ``conv(x, weight, bias)``: another kernel for the dynamic graph (e.g. the training
    convolution of ops/onednn_conv); None is Paddle's. Static programs (export, Paddle
    Inference) always keep the stock convolution, which Paddle Inference fuses.
    """

    def __init__(self, channel_in: int, channel_out: int, conv: Optional[ConvFunction] = None):
        bound = 1.0 / math.sqrt(channel_in * 3 * 3)
        init = nn.initializer.Uniform(-bound, bound)
        super().__init__(channel_in, channel_out, kernel_size=3, padding=1,
                         weight_attr=paddle.ParamAttr(initializer=init),
                         bias_attr=paddle.ParamAttr(initializer=init))
        self.conv = conv

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not paddle.in_dynamic_mode():
            return super().forward(x)
        if self.conv is not None:
            return self.conv(x, self.weight, self.bias)
        # Dygraph adds Conv2D's bias as [1, C, 1, 1] through a slow broadcast on CPU; a
        # [C, 1, 1] bias gives the same values faster (docs/benchmarks.md).
        return F.conv2d(x, self.weight, padding=1) + self.bias.reshape([-1, 1, 1])


class ResBlock(nn.Layer):
    """The coupling subnet ("ResUnit"): two 3x3 convs, then a conv over [input, features].
    ``conv``: the dynamic-graph kernel of its convolutions (Conv3x3)."""

    def __init__(self, channel_in: int, channel_out: int, feature: int = 64,
                 conv: Optional[ConvFunction] = None):
        super().__init__()
        self.conv1 = Conv3x3(channel_in, feature, conv)
        self.conv2 = Conv3x3(feature, feature, conv)
        self.conv3 = Conv3x3(feature + channel_in, channel_out, conv)
        self.relu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        residual = self.relu(self.conv1(x))
        residual = self.relu(self.conv2(residual))
        return self.conv3(paddle.concat([x, residual], axis=1))


class InvBlockExp(nn.Layer):
    """Affine coupling block.

    x = [x1, x2] with x1 the first ``channel_split_num`` channels (the low-frequency
    image). Forward: y1 = x1 + F(x2); s = clamp * (2 * sigmoid(H(y1)) - 1);
    y2 = x2 * exp(s) + G(y1). The reverse pass inverts these three steps exactly.
    """

    def __init__(self, subnet_constructor: SubnetConstructor, channel_num: int,
                 channel_split_num: int = 3, clamp: float = 1.0):
        super().__init__()
        self.split_len1 = channel_split_num
        self.split_len2 = channel_num - channel_split_num
        self.clamp = clamp
        self.F = subnet_constructor(self.split_len2, self.split_len1)
        self.G = subnet_constructor(self.split_len1, self.split_len2)
        self.H = subnet_constructor(self.split_len1, self.split_len2)

    def _log_scale(self, y1: paddle.Tensor) -> paddle.Tensor:
        return self.clamp * (F.sigmoid(self.H(y1)) * 2 - 1)

    def forward(self, x: paddle.Tensor, rev: bool = False, cal_jacobian: bool = False) -> Output:
        x1 = x[:, :self.split_len1]
        x2 = x[:, self.split_len1:]
        if not rev:
            y1 = x1 + self.F(x2)
            s = self._log_scale(y1)
            y2 = x2 * paddle.exp(s) + self.G(y1)
        else:
            s = self._log_scale(x1)
            y2 = (x2 - self.G(x1)) / paddle.exp(s)
            y1 = x1 - self.F(y2)
        out = paddle.concat([y1, y2], axis=1)
        if not cal_jacobian:
            return out
        log_jac = paddle.sum(s) / x.shape[0]
        return out, (-log_jac if rev else log_jac)


def haar_filters(channel_in: int) -> np.ndarray:
    """The 4 Haar filters (LL, and three detail bands) repeated for each input channel.

    Shape [4 * channel_in, 1, 2, 2], in the official code's order, so that output
    channel 4 * c + k is band k of input channel c.
    """
    bands = np.ones((4, 1, 2, 2), dtype=np.float32)
    bands[1, 0, 0, 1] = bands[1, 0, 1, 1] = -1
    bands[2, 0, 1, 0] = bands[2, 0, 1, 1] = -1
    bands[3, 0, 1, 0] = bands[3, 0, 0, 1] = -1
    return np.concatenate([bands] * channel_in, axis=0)


class HaarDownsampling(nn.Layer):
    """Orthogonal 2x Haar downsampling: C x H x W -> 4C x H/2 x W/2.

    Output channels are band-major (band k of channel c at k * C + c), as in the
    official code. The filters are fixed: kept in the state dict as a persistable
    buffer (the official model stores them as a frozen parameter), never trained.
    """

    def __init__(self, channel_in: int):
        super().__init__()
        self.channel_in = channel_in
        self.register_buffer('haar_weights', paddle.to_tensor(haar_filters(channel_in)),
                             persistable=True)
        # Channel permutations between the grouped conv's channel-major order
        # (4c + k) and the band-major order (kC + c); a gather keeps H and W free
        # for dynamic shapes in exported programs.
        band_major = np.arange(4 * channel_in).reshape(channel_in, 4).T.reshape(-1)
        self.register_buffer('to_band_major', paddle.to_tensor(band_major.astype('int64')),
                             persistable=False)
        self.register_buffer('to_channel_major',
                             paddle.to_tensor(np.argsort(band_major).astype('int64')),
                             persistable=False)

    def forward(self, x: paddle.Tensor, rev: bool = False, cal_jacobian: bool = False) -> Output:
        if not rev:
            out = F.conv2d(x, self.haar_weights, stride=2, groups=self.channel_in) / 4.0
            out = paddle.index_select(out, self.to_band_major, axis=1)
            log_jac_per_element = math.log(1 / 16.0)
        else:
            out = paddle.index_select(x, self.to_channel_major, axis=1)
            out = F.conv2d_transpose(out, self.haar_weights, stride=2, groups=self.channel_in)
            log_jac_per_element = math.log(16.0)
        if not cal_jacobian:
            return out
        # Official convention: (number of elements of this op's input) / 4 * log(1/16).
        elements = x.shape[1] * x.shape[2] * x.shape[3]
        return out, paddle.to_tensor(elements / 4 * log_jac_per_element, dtype=x.dtype)


class InvNet(nn.Layer):
    """InvDN: ``down_num`` Haar stages, each followed by ``block_num[i]`` coupling blocks.

    ``InvNet()`` is the paper's model (3 -> 12 -> 48 channels, 8 + 8 blocks,
    2,640,960 trainable parameters). The forward pass returns the 48-channel
    H/4 x W/4 tensor whose first ``channel_out`` channels are the low-resolution image.
    """

    def __init__(self, channel_in: int = 3, channel_out: int = 3,
                 subnet_constructor: SubnetConstructor = ResBlock,
                 block_num: Sequence[int] = (8, 8), down_num: int = 2):
        super().__init__()
        if len(block_num) != down_num:
            raise ValueError(f'block_num must have down_num={down_num} entries, got {list(block_num)}')
        self.channel_in = channel_in
        self.channel_out = channel_out
        self.down_num = down_num
        operations = []
        channels = channel_in
        for stage in range(down_num):
            operations.append(HaarDownsampling(channels))
            channels *= 4
            operations.extend(InvBlockExp(subnet_constructor, channels, channel_out)
                              for _ in range(block_num[stage]))
        self.operations = nn.LayerList(operations)
        self.latent_channels = channels

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** self.down_num

    def _check_input(self, x: paddle.Tensor, rev: bool) -> None:
        channels = self.latent_channels if rev else self.channel_in
        multiple = 1 if rev else self.size_multiple
        n, c, h, w = x.shape
        if isinstance(c, int) and c > 0 and c != channels:
            raise ValueError(f'InvNet ({"reverse" if rev else "forward"}) expects {channels} '
                             f'input channels, got {c} (input shape {list(x.shape)})')
        # Dynamic dimensions are -1 or symbolic Values while exporting a static
        # program: only check sizes known as Python ints.
        if any(isinstance(d, int) and d > 0 and d % multiple for d in (h, w)):
            raise ValueError(f'InvNet input height and width must be multiples of {multiple} '
                             f'(2**down_num), got {h}x{w}; pad the image first '
                             '(core.denoise pads arbitrary sizes)')

    def _run(self, x: paddle.Tensor, rev: bool, cal_jacobian: bool) -> Output:
        self._check_input(x, rev)
        operations = reversed(self.operations) if rev else self.operations
        out = x
        log_jac = paddle.zeros([], dtype=x.dtype)
        for op in operations:
            if cal_jacobian:
                out, op_jac = op(out, rev=rev, cal_jacobian=True)
                log_jac = log_jac + op_jac
            else:
                out = op(out, rev=rev)
        return (out, log_jac) if cal_jacobian else out

    def encode(self, noisy: paddle.Tensor, cal_jacobian: bool = False) -> Output:
        """Forward pass: noisy [N, channel_in, H, W] -> latent [N, latent_channels, H/s, W/s]
        whose first ``channel_out`` channels are the low-resolution image."""
        return self._run(noisy, rev=False, cal_jacobian=cal_jacobian)

    def decode(self, latent: paddle.Tensor, cal_jacobian: bool = False) -> Output:
        """Reverse pass: latent [N, latent_channels, h, w] -> image [N, channel_in, h*s, w*s]."""
        return self._run(latent, rev=True, cal_jacobian=cal_jacobian)

    def forward(self, x: paddle.Tensor, rev: bool = False, cal_jacobian: bool = False) -> Output:
        """FrEIA convention: ``encode`` (rev=False) or ``decode`` (rev=True)."""
        return self.decode(x, cal_jacobian) if rev else self.encode(x, cal_jacobian)

    def denoise(self, noisy: paddle.Tensor, z: paddle.Tensor) -> paddle.Tensor:
        """The paper's denoising pass: encode, keep the low-resolution image, replace the
        high-frequency channels by ``z``, decode.

        noisy [N, channel_in, H, W] (H, W multiples of ``size_multiple``); z [K*N,
        latent_channels - channel_out, H/s, W/s]: K draws per image, sample-major (row
        k*N + n belongs to image n). Returns [K*N, channel_in, H, W]; the official
        ``MC_test`` averages the K results. The forward pass runs once for all K draws.
        """
        lr_image = self.encode(noisy)[:, :self.channel_out]
        samples = paddle.shape(z)[0] // paddle.shape(noisy)[0]  # a tensor: stays dynamic in export
        lr_image = paddle.tile(lr_image, [samples, 1, 1, 1])
        return self.decode(paddle.concat([lr_image, z], axis=1))[:, :self.channel_in]


def build_invnet(in_nc: int = 3, out_nc: int = 3, block_num: Sequence[int] = (8, 8),
                 scale: int = 4, network_class: type = InvNet,
                 conv3x3: Optional[ConvFunction] = None) -> InvNet:
    """InvNet (or a subclass) from the YAML ``network_G`` options (in_nc, out_nc, block_num,
    scale); ``conv3x3``: the dynamic-graph kernel of every subnet convolution (None: Paddle's)."""
    down_num = int(round(math.log2(scale)))
    if 2 ** down_num != scale:
        raise ValueError(f'network_G.scale must be a power of 2, got {scale}')
    subnet = functools.partial(ResBlock, conv=conv3x3) if conv3x3 is not None else ResBlock
    return network_class(in_nc, out_nc, subnet, list(block_num), down_num)
