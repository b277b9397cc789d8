"""ONNX Runtime: a back end of the denoise routine (core.denoise) that runs DIR/model.onnx, as
written and verified by export_model.py --format onnx (deploy.export), on the CPU in fp32.

onnxruntime is optional (requirements-deploy.txt) and imported only when a back end is opened.
"""
from typing import Optional

import numpy as np

from core.contract import Geometry, contract_feed
from deploy.onnx_graph import require
from utils.cpu_speed import available_cpu_cores

PRECISIONS = ('fp32',)


class OnnxRuntimeBackend:
    """``model.onnx`` run by ONNX Runtime's CPU execution provider (fp32)."""
    name = 'onnxruntime'
    bytes_per_pixel = 450  # benchmarks/photos.py

    def __init__(self, model_file: str, geometry: Geometry, cpu_threads: Optional[int] = None):
        ort = require('onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads or available_cpu_cores()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # paddle2onnx leaves unused constants: one warning each
        self.session = ort.InferenceSession(model_file, options, providers=['CPUExecutionProvider'])
        self.geometry = geometry
        self.precision = 'fp32'

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.session.run(None, contract_feed(noisy, z, self.geometry))[0]
