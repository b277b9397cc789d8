"""Choosing the back end that runs a model for the denoise routine (core.denoise).

Back ends: ``dygraph`` (the Paddle model), ``paddle-inference`` (the exported program,
deploy.paddle_inference), ``onnxruntime`` and ``openvino`` (the exported, repaired and verified
ONNX graph, deploy.onnx_backends). All compute the same function, so padding,
self-ensemble, Monte-Carlo samples and tiling come from the one routine alike.

``auto`` picks the fastest back end installed for the device. On CPU, measured with the paper
model on a 256 x 256 image (benchmarks/bench_cpu.py, 2-core AMD EPYC Zen 4): OpenVINO, then
ONNX Runtime, then Paddle Inference (always installed); with bf16, OpenVINO when installed
(Paddle Inference bf16 is slower than its fp32 there). On GPU, dygraph.
"""
import importlib.util
import os
import tempfile
from typing import Any, Dict, Optional, Tuple

from core.contract import BACKENDS, read_contract
from core.denoise import Backend, DygraphBackend
from deploy.export import export_onnx, export_program
from deploy.onnx_graph import DEPLOY_REQUIREMENTS, ONNX_FILE
from networks.InvDN_model_oneForward import InvNetOneForward
from utils.device import on_gpu

# Fastest first (module docstring); the package each needs.
_CPU_ORDER = (('openvino', 'openvino'), ('onnxruntime', 'onnxruntime'), ('paddle-inference', 'paddle'))
_ONNX_BACKENDS = ('onnxruntime', 'openvino')


def installed(backend: str) -> bool:
    """Whether the package a back end needs is importable (dygraph and paddle-inference always)."""
    package = dict(_CPU_ORDER).get(backend, 'paddle')
    return importlib.util.find_spec(package) is not None


def resolve_backend(name: str, precision: str = 'fp32', gpu: Optional[bool] = None,
                    candidates: Tuple[str, ...] = BACKENDS) -> str:
    """The back end ``name`` stands for: itself, or for ``auto`` the fastest installed one for
    the device and precision among ``candidates``."""
    if name not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {name!r}')
    if name != 'auto':
        return name
    if on_gpu() if gpu is None else gpu:
        return 'dygraph' if 'dygraph' in candidates else 'paddle-inference'
    order = [backend for backend, _ in _CPU_ORDER if backend in candidates]
    if precision == 'bf16':  # ONNX Runtime runs fp32 only
        order = [backend for backend in order if backend != 'onnxruntime']
    return next(backend for backend in order if installed(backend))


def _check_installed(name: str) -> None:
    if not installed(name):
        raise ImportError(f'back end {name} needs the {dict(_CPU_ORDER)[name]} package: '
                          f'pip install -r {DEPLOY_REQUIREMENTS}')


def _onnx_backend(name: str, model_file: str, geometry, precision: str,
                  cpu_threads: Optional[int]) -> Backend:
    from deploy.onnx_backends import OnnxRuntimeBackend, OpenVinoBackend

    backend_class = OpenVinoBackend if name == 'openvino' else OnnxRuntimeBackend
    return backend_class(model_file, geometry, precision=precision, cpu_threads=cpu_threads)


def open_backend(name: str, model: InvNetOneForward, precision: str = 'fp32') -> Backend:
    """``model`` as the back end ``name`` (``auto``: ``resolve_backend``).

    paddle-inference, onnxruntime and openvino export it with the one exporter
    (deploy.export, verified; ONNX repaired) to a temporary folder and keep the verified
    runtime in memory. bf16: paddle-inference and openvino, on CPUs with AVX512-BF16 or AMX.
    """
    name = resolve_backend(name, precision)
    if name == 'dygraph':
        if precision != 'fp32':
            raise ValueError(f'precision={precision} needs --backend openvino or paddle-inference; '
                             'dygraph runs fp32')
        return DygraphBackend(model)
    if name in _ONNX_BACKENDS:
        _check_installed(name)
        from deploy.onnx_backends import check_precision

        check_precision(name, precision)  # before the export, not after it
    use_gpu = on_gpu()
    with tempfile.TemporaryDirectory(prefix='invdn_export_') as model_dir:
        # The runtimes that checked the export hold the model in memory: they are the back
        # end, and the folder can go.
        report = export_program(model, model_dir, use_gpu=use_gpu)
        if name == 'paddle-inference':
            if precision == 'fp32':
                return report.backend
            from deploy.paddle_inference import PaddleInferenceBackend

            return PaddleInferenceBackend(model_dir, use_gpu=use_gpu, precision=precision,
                                          geometry=report.geometry)
        onnx_report = export_onnx(report)
        if precision == 'fp32' and name in onnx_report.backends:
            return onnx_report.backends[name]
        return _onnx_backend(name, onnx_report.path, report.geometry, precision, None)


def open_exported_backend(name: str, model_dir: str, use_gpu: bool = False, precision: str = 'fp32',
                          cpu_threads: Optional[int] = None,
                          paddle_options: Optional[Dict[str, Any]] = None) -> Backend:
    """The model exported by export_model.py in ``model_dir`` as the back end ``name``
    (paddle-inference, onnxruntime, openvino or auto: the fastest installed for which the folder
    has a model; onnxruntime and openvino need ``--format onnx``). ``paddle_options``:
    PaddleInferenceBackend's switches (enable_mkldnn, use_tensorrt, max_batch_size); with them
    set away from the defaults, auto means paddle-inference."""
    from deploy.paddle_inference import PaddleInferenceBackend, find_model_files

    find_model_files(model_dir)
    onnx_file = os.path.join(model_dir, ONNX_FILE)
    candidates = ('paddle-inference',) + (_ONNX_BACKENDS if os.path.isfile(onnx_file) else ())
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
    _check_installed(name)
    if not os.path.isfile(onnx_file):
        raise FileNotFoundError(f'{onnx_file} not found: back end {name} runs the ONNX model; export '
                                f'it with python export_model.py --weights W --save_inference_dir '
                                f'{model_dir} --format onnx --overwrite')
    return _onnx_backend(name, onnx_file, read_contract(model_dir), precision, cpu_threads)
