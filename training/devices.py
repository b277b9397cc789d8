"""What runs the training step on each kind of device: cuDNN and TF32 settings on a GPU, the
oneDNN convolution (ops/onednn_conv) on a CPU."""
import os
from typing import Dict, Optional, Tuple

import paddle

from config import Config
from networks.InvDN_model import ConvFunction
from utils.cpu_speed import default_threads


def gpu_flags(train_cfg: Config) -> Dict[str, bool]:
    """cuDNN settings for a GPU run. The training crop is fixed, so the exhaustive algorithm
    search pays off after the first iterations; deterministic algorithms exclude it."""
    return {'FLAGS_cudnn_exhaustive_search': not train_cfg.deterministic,
            'FLAGS_cudnn_deterministic': train_cfg.deterministic}


def configure_gpu(train_cfg: Config) -> None:
    """cuDNN flags, and TF32 for cuDNN convolutions and cuBLAS matmuls, stated instead of left
    to Paddle's defaults (which have changed between releases; TF32 is a switch of the
    core library in Paddle 3.3, not a flag)."""
    paddle.set_flags(gpu_flags(train_cfg))
    paddle.base.core.set_cudnn_switch(train_cfg.allow_tf32)
    paddle.base.core.set_cublas_switch(train_cfg.allow_tf32)


def select_cpu_conv(choice: str) -> Tuple[Optional[ConvFunction], str]:
    """``train.cpu_conv``: the oneDNN custom operator ('auto', when it builds here) or Paddle's
    own convolution ('paddle', and on GPUs), as the ``conv3x3`` to build the network with
    (networks.build_invnet), and the line to log, with the reason when 'auto' falls back."""
    from ops import onednn_conv

    if choice == 'paddle':
        return None, 'Convolutions: Paddle dygraph'
    if onednn_conv.load() is None:
        return None, ('Convolutions: Paddle dygraph (oneDNN custom operator unavailable: '
                      f'{onednn_conv.unavailable_reason()})')
    # The operator runs on OpenMP, not MKL: the same thread count as the GEMMs (utils/cpu_speed).
    threads = int(os.environ.get('MKL_NUM_THREADS') or default_threads())
    onednn_conv.set_num_threads(threads)
    return onednn_conv.conv3x3, f'Convolutions: oneDNN custom operator (ops/onednn_conv), {threads} thread(s)'
