"""Paddle Inference: the back end that runs the exported program (export_model.py).

On CPU the predictor runs through oneDNN with IR optimisation on, several times faster
than Paddle's native CPU kernels (docs/benchmarks.md). On Paddle 3.3.1 one oneDNN
fusion pass crashes on this network, so it is removed.
"""
import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import paddle
import paddle.inference as paddle_infer

from core.contract import PRECISIONS, Geometry, check_inputs, read_contract
from utils.cpu_speed import available_cpu_cores

MODEL_PREFIX = 'model'

# With this pass Paddle 3.3.1 segfaults at the first run of the InvDN program (the
# conv + LeakyReLU fusion); without it the convolutions still run in oneDNN, only
# the LeakyReLU is a separate op.
ONEDNN_BROKEN_PASSES = ('conv_activation_onednn_fuse_pass',)

# Paddle 3.3.1 runs PIR programs in bf16 with a fixed op list (conv2d, concat, add,
# multiply, sigmoid, slice, ...; Config.set_bfloat16_op is not consulted), so the coupling
# blocks' states are rounded to bf16. On trained weights that costs little; on weights far
# from trained it costs more (benchmarks/quality.py; figures in docs/deployment.md).
_GPU_MEMORY_POOL_MB = 256
# TensorRT shape range (image side: smallest, largest, typical) and MC samples per image.
_TRT_SIDES = (32, 2048, 256)
_TRT_MAX_SAMPLES = 16

# oneDNN keeps primitives and buffers per input shape: unbounded, a folder of photos of
# many sizes grows the process with every new shape; bounded, it levels off.
# 8 shapes cover a tiled image (interior and border tiles) with its transposed variants.
_ONEDNN_CACHED_SHAPES = 8


class InferenceModelError(FileNotFoundError):
    """The exported model directory is missing or incomplete."""


def find_model_files(model_dir: str) -> Tuple[str, str]:
    """``(program_file, params_file)`` under ``model_dir`` saved with prefix ``model``.

    Paddle 3 with PIR writes ``model.json``; the legacy IR writes ``model.pdmodel``.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise InferenceModelError(f'model directory {root} does not exist; export one with '
                                  'python export_model.py --weights W --save_inference_dir DIR')
    params = root / f'{MODEL_PREFIX}.pdiparams'
    programs = [root / f'{MODEL_PREFIX}{ext}' for ext in ('.json', '.pdmodel')]
    program = next((p for p in programs if p.is_file()), None)
    if program is None or not params.is_file():
        found = sorted(p.name for p in root.iterdir())
        raise InferenceModelError(
            f'{root} must hold {programs[0].name} (or {programs[1].name}) and {params.name} '
            f'as written by export_model.py; found {found or "nothing"}')
    return str(program), str(params)


def onednn_available() -> bool:
    """Whether this Paddle build has oneDNN (formerly MKL-DNN) CPU kernels."""
    core = paddle.base.core
    check = getattr(core, 'is_compiled_with_onednn', None) or getattr(core, 'is_compiled_with_mkldnn')
    return bool(check())


def bf16_supported() -> bool:
    """Whether oneDNN can run bf16 on this CPU (AVX512-BF16 or AMX); otherwise Paddle
    silently keeps fp32."""
    return onednn_available() and bool(paddle.base.core.supports_bfloat16())


def _configure_cpu(config: paddle_infer.Config, precision: str, cpu_threads: int,
                   enable_mkldnn: bool = True) -> None:
    # Paddle Inference defaults to 1 math thread; use every available core.
    config.set_cpu_math_library_num_threads(cpu_threads)
    if precision == 'fp16':
        raise ValueError('precision=fp16 is a GPU option; on CPU use fp32, or bf16 on CPUs with '
                         'AVX512-BF16/AMX')
    if precision == 'bf16' and not enable_mkldnn:
        raise ValueError('precision=bf16 runs through oneDNN: it needs enable_mkldnn=True')
    if not enable_mkldnn:
        config.disable_onednn()
        return
    if not onednn_available():
        if precision == 'bf16':
            raise RuntimeError('precision=bf16 needs a Paddle build with oneDNN; this one has none')
        warnings.warn('this Paddle build has no oneDNN: running on its native CPU kernels, '
                      'which are several times slower')
        return
    config.enable_onednn()
    config.set_onednn_cache_capacity(_ONEDNN_CACHED_SHAPES)
    for name in ONEDNN_BROKEN_PASSES:
        config.delete_pass(name)
    if precision == 'bf16':
        if not bf16_supported():
            raise RuntimeError('precision=bf16 needs a CPU with AVX512-BF16 or AMX '
                               '(paddle.base.core.supports_bfloat16() is False here); use fp32')
        config.enable_onednn_bfloat16()


def _configure_gpu(config: paddle_infer.Config, precision: str, use_tensorrt: bool,
                   gpu_id: int, max_batch_size: int, model_dir: str) -> None:
    if precision == 'bf16':
        raise ValueError('precision=bf16 is a CPU (oneDNN) option; on GPU use fp32 or fp16')
    mode = paddle_infer.PrecisionType.Half if precision == 'fp16' else paddle_infer.PrecisionType.Float32
    if not use_tensorrt:
        # fp16: Paddle Inference's mixed precision, fp16 kernels with fp32 where an op has none.
        config.enable_use_gpu(_GPU_MEMORY_POOL_MB, gpu_id, mode)
        return
    config.enable_use_gpu(_GPU_MEMORY_POOL_MB, gpu_id)
    config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch_size,
                                  min_subgraph_size=3, precision_mode=mode, use_static=False,
                                  use_calib_mode=False)
    # TensorRT builds engines for a range of shapes: the inputs' dynamic N, K*N, H and W.
    geometry = read_contract(model_dir)
    c, zc, s = geometry.channel_in, geometry.z_channels, geometry.size_multiple
    low, high, typical = _TRT_SIDES
    config.set_trt_dynamic_shape_info(
        {'noisy': [1, c, low, low], 'z': [1, zc, low // s, low // s]},
        {'noisy': [max_batch_size, c, high, high],
         'z': [max_batch_size * _TRT_MAX_SAMPLES, zc, high // s, high // s]},
        {'noisy': [1, c, typical, typical], 'z': [1, zc, typical // s, typical // s]})


def create_predictor(model_dir: str, use_gpu: bool = False, precision: str = 'fp32',
                     cpu_threads: Optional[int] = None, gpu_id: int = 0,
                     enable_mkldnn: bool = True, use_tensorrt: bool = False,
                     max_batch_size: int = 1) -> paddle_infer.Predictor:
    """A Paddle Inference predictor for the model exported under ``model_dir``.

    CPU: oneDNN (if built in, unless ``enable_mkldnn`` is False: Paddle's native kernels)
    with the broken fusion pass removed, ``cpu_threads`` math threads (default: all
    available cores). ``precision='bf16'`` runs through oneDNN's bf16 kernels, needs a CPU
    with bf16 instructions (accuracy: see above).
    GPU: fp32 or fp16 on device ``gpu_id``; ``use_tensorrt`` runs the graph through
    TensorRT subgraphs for inputs up to ``max_batch_size`` images of up to 2048 x 2048.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if cpu_threads is not None and cpu_threads < 1:
        raise ValueError(f'cpu_threads must be a positive integer, got {cpu_threads}')
    if use_tensorrt and not use_gpu:
        raise ValueError('use_tensorrt needs the GPU (use_gpu=True)')
    program, params = find_model_files(model_dir)
    config = paddle_infer.Config(program, params)
    config.switch_ir_optim(True)
    config.disable_glog_info()
    if use_gpu:
        if not paddle.is_compiled_with_cuda():
            raise RuntimeError('use_gpu=True but this Paddle build has no CUDA support; '
                               'install paddlepaddle-gpu or run on CPU')
        _configure_gpu(config, precision, use_tensorrt, gpu_id, max_batch_size, model_dir)
    else:
        config.disable_gpu()
        _configure_cpu(config, precision, cpu_threads or available_cpu_cores(), enable_mkldnn)
    return paddle_infer.create_predictor(config)


class PaddleInferenceBackend:
    """The exported program in ``model_dir``, run by a Paddle Inference predictor
    (a back end of core.denoise)."""
    name = 'paddle-inference'
    bytes_per_pixel = 5000  # oneDNN keeps every layer's buffers (benchmarks/photos.py)

    def __init__(self, model_dir: str, use_gpu: bool = False, precision: str = 'fp32',
                 cpu_threads: Optional[int] = None, geometry: Optional[Geometry] = None,
                 enable_mkldnn: bool = True, use_tensorrt: bool = False, max_batch_size: int = 1):
        """``geometry``: the model's, while it is being exported; otherwise read from the
        contract beside the program. The other arguments: ``create_predictor``."""
        self.predictor = create_predictor(model_dir, use_gpu=use_gpu, precision=precision,
                                          cpu_threads=cpu_threads, enable_mkldnn=enable_mkldnn,
                                          use_tensorrt=use_tensorrt, max_batch_size=max_batch_size)
        self.geometry = geometry or read_contract(model_dir)
        names = self.predictor.get_input_names()
        # Fed by the export's InputSpec names when present, else by position.
        self.input_names = ['noisy', 'z'] if set(names) == {'noisy', 'z'} else names

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        check_inputs(noisy, z, self.geometry)
        for name, array in zip(self.input_names, (noisy, z)):
            handle = self.predictor.get_input_handle(name)
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(np.ascontiguousarray(array, dtype=np.float32))
        self.predictor.run()
        output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        return output.copy_to_cpu()
