"""OpenVINO: a back end of the denoise routine (core.denoise) that compiles DIR/model.onnx, as
written and verified by export_model.py --format onnx (deploy.export), for the CPU.

The precision is always set: on a CPU with AVX512-BF16 or AMX, OpenVINO's default
``INFERENCE_PRECISION_HINT`` is bf16, so a run that does not ask for f32 silently gets bf16.
openvino is optional (requirements-deploy.txt) and imported only when a back end is opened.
"""
from typing import Optional

import numpy as np

from core.contract import Geometry, contract_feed
from deploy.onnx_graph import require
from utils.cpu_speed import available_cpu_cores

PRECISION_HINTS = {'fp32': 'f32', 'bf16': 'bf16'}
# Working memory per pixel and draw of z (core.denoise.Backend; benchmarks/photos.py).
BYTES_PER_PIXEL = {'fp32': 700, 'bf16': 450}


def openvino_bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin can run bf16 here (AVX512-BF16 or AMX)."""
    openvino = require('openvino')
    return 'BF16' in openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


class OpenVinoBackend:
    """``model.onnx`` compiled by OpenVINO for the CPU, in fp32 or bf16 (inference precision
    hint; bf16 needs AVX512-BF16 or AMX: deploy.runtimes.check_precision)."""
    name = 'openvino'

    def __init__(self, model_file: str, geometry: Geometry, precision: str = 'fp32',
                 cpu_threads: Optional[int] = None):
        if precision not in PRECISION_HINTS:
            raise ValueError(f'precision={precision} is not available with openvino; use fp32 or bf16')
        openvino = require('openvino')
        core = openvino.Core()
        config = {'INFERENCE_PRECISION_HINT': PRECISION_HINTS[precision],
                  'PERFORMANCE_HINT': 'LATENCY',
                  'INFERENCE_NUM_THREADS': cpu_threads or available_cpu_cores()}
        self.compiled = core.compile_model(core.read_model(model_file), 'CPU', config)
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.outputs[0]
        self.geometry = geometry
        self.precision = precision
        self.bytes_per_pixel = BYTES_PER_PIXEL[precision]

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        # The request's output buffer is reused by the next call: copy it out.
        return np.array(self.request.infer(contract_feed(noisy, z, self.geometry))[self.output],
                        copy=True)
