"""ONNX Runtime and OpenVINO: back ends of the denoise routine (core.denoise) on CPU.

Both run DIR/model.onnx as written and verified by export_model.py --format onnx
(deploy.export); onnxruntime and openvino are optional (requirements-deploy.txt) and
imported only here, when a back end is opened.

OpenVINO's precision is set explicitly: on a CPU with AVX512-BF16 or AMX its default
``INFERENCE_PRECISION_HINT`` is bf16 (OpenVINO 2026.4.1 on an AMD EPYC Zen 4 reports
bfloat16), so a run that does not ask for f32 silently gets bf16.
"""
from typing import Optional

import numpy as np

from core.contract import PRECISIONS, Geometry, check_inputs
from deploy.onnx_graph import require
from utils.cpu_speed import available_cpu_cores

_OPENVINO_PRECISIONS = {'fp32': 'f32', 'bf16': 'bf16'}


def openvino_bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin can run bf16 here (AVX512-BF16 or AMX)."""
    openvino = require('openvino')
    return 'BF16' in openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


def check_precision(backend: str, precision: str) -> None:
    """Refuse, with what to use instead, a precision ``backend`` cannot run here: ONNX Runtime
    runs fp32, OpenVINO fp32 and bf16 (bf16 on CPUs with AVX512-BF16 or AMX)."""
    allowed = tuple(_OPENVINO_PRECISIONS) if backend == 'openvino' else ('fp32',)
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision not in allowed:
        raise ValueError(f'precision={precision} is not available with {backend}; use '
                         f'{" or ".join(allowed)} (bf16: --backend openvino or paddle-inference)')
    if precision == 'bf16' and not openvino_bf16_supported():
        raise RuntimeError('precision=bf16 needs a CPU with AVX512-BF16 or AMX (OpenVINO does not '
                           'list BF16 in its CPU capabilities here); use --precision fp32')


def _feed(noisy: np.ndarray, z: np.ndarray, geometry: Geometry) -> dict:
    """The inputs of model_contract.json, checked, as contiguous float32."""
    check_inputs(noisy, z, geometry)
    return {'noisy': np.ascontiguousarray(noisy, dtype=np.float32),
            'z': np.ascontiguousarray(z, dtype=np.float32)}


class OnnxRuntimeBackend:
    """``model.onnx`` run by ONNX Runtime's CPU execution provider (fp32)."""
    name = 'onnxruntime'

    def __init__(self, model_file: str, geometry: Geometry, precision: str = 'fp32',
                 cpu_threads: Optional[int] = None):
        check_precision(self.name, precision)
        ort = require('onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads or available_cpu_cores()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # paddle2onnx leaves unused constants: one warning each
        self.session = ort.InferenceSession(model_file, options, providers=['CPUExecutionProvider'])
        self.geometry = geometry
        self.precision = precision

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.session.run(None, _feed(noisy, z, self.geometry))[0]


class OpenVinoBackend:
    """``model.onnx`` compiled by OpenVINO for the CPU, in fp32 or bf16 (inference precision
    hint; bf16 needs AVX512-BF16 or AMX)."""
    name = 'openvino'

    def __init__(self, model_file: str, geometry: Geometry, precision: str = 'fp32',
                 cpu_threads: Optional[int] = None):
        check_precision(self.name, precision)
        openvino = require('openvino')
        core = openvino.Core()
        config = {'INFERENCE_PRECISION_HINT': _OPENVINO_PRECISIONS[precision],
                  'PERFORMANCE_HINT': 'LATENCY',
                  'INFERENCE_NUM_THREADS': cpu_threads or available_cpu_cores()}
        self.compiled = core.compile_model(core.read_model(model_file), 'CPU', config)
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.outputs[0]
        self.geometry = geometry
        self.precision = precision

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        # The request's output buffer is reused by the next call: copy it out.
        return np.array(self.request.infer(_feed(noisy, z, self.geometry))[self.output], copy=True)
