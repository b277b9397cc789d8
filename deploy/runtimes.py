"""Which runtime runs an exported model, opened from the folder the exporter wrote.

Runtimes: ``paddle-inference`` (the program, deploy.paddle_inference), ``onnxruntime`` and
``openvino`` (the repaired, verified ONNX graph, deploy.onnx_runtime and
deploy.openvino_runtime). Each is a back end of the one denoise routine (core.denoise), so
padding, self-ensemble, Monte-Carlo samples and tiling are the same whichever runs.

``auto`` picks the fastest one installed for the device, in the order measured in
docs/benchmarks.md: on CPU OpenVINO, then ONNX Runtime, then Paddle Inference (always
installed); with bf16, OpenVINO when installed. On GPU, Paddle Inference (the scripts that
hold the weights run dygraph there: apps.models).
"""
import importlib.util
import os
from typing import Any, Dict, Optional, Tuple

from core.contract import BACKENDS, PRECISIONS, read_contract
from core.denoise import Backend
from deploy.onnx_graph import DEPLOY_REQUIREMENTS, ONNX_FILE

# Fastest first (module docstring); the package each needs.
CPU_ORDER = (('openvino', 'openvino'), ('onnxruntime', 'onnxruntime'), ('paddle-inference', 'paddle'))
ONNX_RUNTIMES = ('onnxruntime', 'openvino')
RUNTIMES = tuple(name for name, _ in CPU_ORDER)


def installed(runtime: str) -> bool:
    """Whether the package a runtime needs is importable (dygraph and paddle-inference always)."""
    package = dict(CPU_ORDER).get(runtime, 'paddle')
    return importlib.util.find_spec(package) is not None


def resolve_backend(name: str, precision: str = 'fp32', gpu: bool = False,
                    candidates: Tuple[str, ...] = BACKENDS) -> str:
    """The back end ``name`` stands for: itself, or for ``auto`` the fastest installed one for
    the device and precision among ``candidates``."""
    if name not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {name!r}')
    if name != 'auto':
        return name
    if gpu:
        return 'dygraph' if 'dygraph' in candidates else 'paddle-inference'
    order = [runtime for runtime in RUNTIMES if runtime in candidates]
    if precision == 'bf16':  # ONNX Runtime runs fp32 only
        order = [runtime for runtime in order if runtime != 'onnxruntime']
    return next(runtime for runtime in order if installed(runtime))


def check_precision(runtime: str, precision: str) -> None:
    """Refuse, with what to use instead, a precision ``runtime`` cannot run here: ONNX Runtime
    runs fp32, OpenVINO fp32 and bf16 (bf16 on CPUs with AVX512-BF16 or AMX); Paddle Inference
    checks its own when the predictor is made (deploy.paddle_inference)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if runtime not in ONNX_RUNTIMES:
        return
    if not installed(runtime):
        raise ImportError(f'back end {runtime} needs the {dict(CPU_ORDER)[runtime]} package: '
                          f'pip install -r {DEPLOY_REQUIREMENTS}')
    allowed = ('fp32', 'bf16') if runtime == 'openvino' else ('fp32',)
    if precision not in allowed:
        raise ValueError(f'precision={precision} is not available with {runtime}; use '
                         f'{" or ".join(allowed)} (bf16: --backend openvino or paddle-inference)')
    if precision == 'bf16':
        from deploy.openvino_runtime import openvino_bf16_supported

        if not openvino_bf16_supported():
            raise RuntimeError('precision=bf16 needs a CPU with AVX512-BF16 or AMX (OpenVINO does '
                               'not list BF16 in its CPU capabilities here); use --precision fp32')


def auto_precision(runtime: str, gpu: bool = False) -> str:
    """The precision ``--precision auto`` means for ``runtime``: bf16 for OpenVINO on a CPU
    with AVX512-BF16 or AMX (about 3x faster, PSNR within 0.1 dB: docs/deployment.md#bf16), else fp32
    (Paddle Inference's bf16 is slower than its fp32 on the CPUs measured)."""
    if runtime != 'openvino' or gpu or not installed('openvino'):
        return 'fp32'
    from deploy.openvino_runtime import openvino_bf16_supported

    return 'bf16' if openvino_bf16_supported() else 'fp32'


def open_runtime(name: str, model_dir: str, use_gpu: bool = False, precision: str = 'fp32',
                 cpu_threads: Optional[int] = None,
                 paddle_options: Optional[Dict[str, Any]] = None) -> Backend:
    """The model exported in ``model_dir`` (export_model.py, or the cache of deploy.cache) as
    the runtime ``name``: paddle-inference, onnxruntime, openvino, or auto (the fastest
    installed for which the folder has a model; the ONNX runtimes need ``--format onnx``).
    ``paddle_options``: PaddleInferenceBackend's switches (enable_mkldnn, use_tensorrt,
    max_batch_size); with them set away from the defaults, auto means paddle-inference."""
    from deploy.paddle_inference import PaddleInferenceBackend, find_model_files

    find_model_files(model_dir)
    onnx_file = os.path.join(model_dir, ONNX_FILE)
    candidates = ('paddle-inference',) + (ONNX_RUNTIMES if os.path.isfile(onnx_file) else ())
    if name == 'dygraph':
        raise ValueError('an exported model runs with paddle-inference, onnxruntime or openvino, '
                         'not dygraph (predict.py runs the weights in dygraph)')
    paddle_options = paddle_options or {}
    paddle_only = not paddle_options.get('enable_mkldnn', True) or paddle_options.get('use_tensorrt')
    if paddle_only or precision == 'fp16':
        candidates = ('paddle-inference',)  # switches and a precision only Paddle Inference has
    name = resolve_backend(name, precision, gpu=use_gpu, candidates=candidates)
    if paddle_only and name != 'paddle-inference':
        raise ValueError(f'--enable_mkldnn False and --use_tensorrt True are switches of Paddle '
                         f'Inference; back end {name} has neither (use --backend paddle-inference)')
    if name == 'paddle-inference':
        return PaddleInferenceBackend(model_dir, use_gpu=use_gpu, precision=precision,
                                      cpu_threads=cpu_threads, **paddle_options)
    check_precision(name, precision)
    if not os.path.isfile(onnx_file):
        raise FileNotFoundError(f'{onnx_file} not found: back end {name} runs the ONNX model; export '
                                f'it with python export_model.py --weights W --save_inference_dir '
                                f'{model_dir} --format onnx --overwrite')
    geometry = read_contract(model_dir)
    if name == 'openvino':
        from deploy.openvino_runtime import OpenVinoBackend

        return OpenVinoBackend(onnx_file, geometry, precision=precision, cpu_threads=cpu_threads)
    from deploy.onnx_runtime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(onnx_file, geometry, cpu_threads=cpu_threads)
