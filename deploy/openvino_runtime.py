"""OpenVINO: a back end of the denoise routine (core.denoise) that compiles DIR/model.onnx, as
written and verified by export_model.py --format onnx (deploy.export), for the CPU.

The precision is always set: on a CPU with AVX512-BF16 or AMX, OpenVINO's default
``INFERENCE_PRECISION_HINT`` is bf16, so a run that does not ask for f32 silently gets bf16.
openvino is optional (requirements-deploy.txt) and imported only when a back end is opened.
"""
from typing import Any, Optional, Set, Tuple

import numpy as np

from core.contract import Geometry, contract_feed
from deploy.onnx_graph import require
from utils.cpu_speed import available_cpu_cores

PRECISION_HINTS = {'fp32': 'f32', 'bf16': 'bf16'}
# Working memory per pixel and draw of z (core.denoise.Backend; benchmarks/photos.py).
BYTES_PER_PIXEL = {'fp32': 600, 'bf16': 450}
SIZED_PIXELS = 512 * 512


def openvino_bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin can run bf16 here (AVX512-BF16 or AMX)."""
    openvino = require('openvino')
    return 'BF16' in openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


class OpenVinoBackend:
    """``model.onnx`` compiled by OpenVINO for the CPU, in fp32 or bf16 (inference precision
    hint; bf16 needs AVX512-BF16 or AMX: deploy.runtimes.check_precision).

    OpenVINO's CPU plugin runs a model compiled for one input size about 1.5x faster in bf16
    than one compiled for any size (docs/photos.md#speed), and compiling takes about as long
    as a 512 x 512 run. So an input of at least SIZED_PIXELS, or one whose size comes a second
    time (the tiles of a photo, a folder of equal blocks), gets a model compiled for its size;
    other inputs run on the any-size model, compiled when first needed. Only the newest sized
    model is kept, and the any-size request is dropped with it, so that no two sets of
    buffers are held at once."""
    name = 'openvino'

    def __init__(self, model_file: str, geometry: Geometry, precision: str = 'fp32',
                 cpu_threads: Optional[int] = None):
        if precision not in PRECISION_HINTS:
            raise ValueError(f'precision={precision} is not available with openvino; use fp32 or bf16')
        openvino = require('openvino')
        self.core = openvino.Core()
        self.config = {'INFERENCE_PRECISION_HINT': PRECISION_HINTS[precision],
                       'PERFORMANCE_HINT': 'LATENCY',
                       'INFERENCE_NUM_THREADS': cpu_threads or available_cpu_cores()}
        self.model = self.core.read_model(model_file)
        self.geometry = geometry
        self.precision = precision
        self.bytes_per_pixel = BYTES_PER_PIXEL[precision]
        self._any_size: Optional[Any] = None
        self._seen: Set[Tuple[Tuple[int, ...], ...]] = set()
        self._sized: Tuple[Optional[Tuple[Tuple[int, ...], ...]], Any] = (None, None)

    def _compile(self, model: Any) -> Any:
        return self.core.compile_model(model, 'CPU', self.config).create_infer_request()

    def _request(self, shapes: Tuple[Tuple[int, ...], ...]) -> Any:
        if self._sized[0] == shapes:
            return self._sized[1]
        noisy_shape = shapes[0]
        if shapes not in self._seen and noisy_shape[0] * noisy_shape[2] * noisy_shape[3] < SIZED_PIXELS:
            self._seen.add(shapes)
            if self._any_size is None:
                self._any_size = self._compile(self.model)
            return self._any_size
        model = self.model.clone()
        model.reshape(dict(zip(('noisy', 'z'), shapes)))
        self._sized = (None, None)  # free the previous size's buffers before compiling
        self._any_size = None
        self._sized = (shapes, self._compile(model))
        return self._sized[1]

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        feed = contract_feed(noisy, z, self.geometry)
        request = self._request((tuple(noisy.shape), tuple(z.shape)))
        # The request's output buffer is reused by the next call: copy it out.
        return np.array(request.infer(feed)[0], copy=True)
