"""What a denoising back end takes and gives, and how an exported model states it.

The exported program (export_model.py) takes ``noisy [N, C, H, W]`` and
``z [K*N, latent_channels - channel_out, H/s, W/s]`` and returns ``[K*N, C, H, W]``, with
s = ``size_multiple``; ``model_contract.json`` beside it records these numbers so that
deployment code (infer.py, or a user's) needs nothing else.
"""
import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Dict

import numpy as np

from utils.durable import atomic_write_bytes

CONTRACT_FILE = 'model_contract.json'
# What runs the network for the denoise routine (deploy/runtimes.py), and in which precision.
BACKENDS = ('auto', 'dygraph', 'paddle-inference', 'onnxruntime', 'openvino')
# The manipulations of the noisy latent (core.noise_generation), here so that the scripts'
# flags are known without importing Paddle.
NOISE_MODES = ('perturb', 'resample', 'residual')
# fp16 is the GPU's half precision, bf16 the CPU's (oneDNN or OpenVINO, AVX512-BF16 or AMX).
PRECISIONS = ('fp32', 'fp16', 'bf16')


@dataclass(frozen=True)
class Geometry:
    """Channel counts and size multiple of an invertible denoiser."""
    channel_in: int
    channel_out: int
    latent_channels: int
    size_multiple: int

    @property
    def z_channels(self) -> int:
        """Channels of the latent z drawn in place of the high-frequency part."""
        return self.latent_channels - self.channel_out

    @classmethod
    def of(cls, net: Any) -> 'Geometry':
        """The geometry of an ``InvNet``."""
        return cls(net.channel_in, net.channel_out, net.latent_channels, net.size_multiple)


def check_inputs(noisy: Any, z: Any, geometry: Geometry) -> None:
    """Raise ValueError unless ``noisy`` [N, C, H, W] and ``z`` [K*N, z_channels, H/s, W/s] fit."""
    for name, array in (('noisy', noisy), ('z', z)):
        if getattr(array, 'ndim', None) != 4:
            raise ValueError(f'{name} must be a 4-D NCHW array, got shape {getattr(array, "shape", None)}')
    n, channels, height, width = noisy.shape
    multiple = geometry.size_multiple
    if channels != geometry.channel_in or height % multiple or width % multiple:
        raise ValueError(f'noisy must be [N, {geometry.channel_in}, H, W] with H and W multiples of '
                         f'{multiple}, got {tuple(noisy.shape)}; pad it first (core.denoise pads)')
    if z.shape[0] == 0 or z.shape[0] % n:
        raise ValueError(f'z must have K*N rows for the batch size N={n} of noisy, got {tuple(z.shape)}')
    expected = (geometry.z_channels, height // multiple, width // multiple)
    if tuple(z.shape[1:]) != expected:
        raise ValueError(f'z must be at the latent resolution of noisy: [K*N, {expected[0]}, '
                         f'{expected[1]}, {expected[2]}], got {tuple(z.shape)}')


def contract_feed(noisy: Any, z: Any, geometry: Geometry) -> Dict[str, Any]:
    """The inputs of an exported model by their contract names, checked, as contiguous float32."""
    check_inputs(noisy, z, geometry)
    return {'noisy': np.ascontiguousarray(noisy, dtype=np.float32),
            'z': np.ascontiguousarray(z, dtype=np.float32)}


def write_contract(model_dir: str, geometry: Geometry, extra: Dict[str, Any]) -> str:
    """Write ``model_dir/model_contract.json`` atomically; returns its path."""
    path = os.path.join(model_dir, CONTRACT_FILE)
    z_shape = [-1, geometry.z_channels, -1, -1]
    content = {
        'inputs': [
            {'name': 'noisy', 'shape': [-1, geometry.channel_in, -1, -1], 'dtype': 'float32',
             'layout': 'NCHW, RGB', 'value_range': [0.0, 1.0],
             'note': f'H and W must be multiples of {geometry.size_multiple}: reflect-pad and '
                     'crop the output back'},
            {'name': 'z', 'shape': z_shape, 'dtype': 'float32',
             'distribution': 'standard normal times gaussian_scale (1.0 as trained), i.i.d.',
             'note': f'spatial size H/{geometry.size_multiple} x W/{geometry.size_multiple}; '
                     'K*N rows for K draws per image, sample-major (row k*N + n is image n)'},
        ],
        'outputs': [
            {'name': 'denoised', 'shape': [-1, geometry.channel_in, -1, -1], 'dtype': 'float32',
             'layout': 'NCHW, RGB', 'rows': 'K*N, as z; average the K draws of each image',
             'value_range': 'about [0, 1]; clip to [0, 1] before quantising'},
        ],
        **asdict(geometry),
        **extra,
    }
    atomic_write_bytes(path, json.dumps(content, indent=2).encode())
    return path


def read_contract(model_dir: str) -> Geometry:
    """The geometry recorded beside an exported model. export_model.py writes the contract only
    after the program passed its checks, so a folder without one is refused."""
    path = os.path.join(model_dir, CONTRACT_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: the program in {model_dir} was not exported by '
                                'export_model.py, or its export failed its checks; export it again')
    try:
        with open(path) as f:
            content = json.load(f)
        return Geometry(**{key: int(content[key]) for key in Geometry.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f'{path} is not a valid model contract ({err!r}); re-export the model '
                         'with export_model.py') from None
