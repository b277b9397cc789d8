"""The one exporter: InvDN as a static program for Paddle Inference, and as ONNX.

``export_program`` saves the single-forward variant (networks/InvDN_model_oneForward.py)
with ``paddle.jit.save`` as DIR/model.json (or model.pdmodel) + DIR/model.pdiparams, inputs
``noisy [N, C, H, W]`` and ``z [K*N, z_channels, H/s, W/s]`` with dynamic N, K, H and W
(core/contract.py). Before it returns, the saved program is loaded back and compared with
the dynamic model, and DIR/model_contract.json is written. export_model.py calls it, and so
does the export cache (deploy.cache) of predict.py and the SIDD/DND scripts. Exporting writes
a folder; a runtime reads one (deploy.runtimes): nothing here keeps a runtime open.

Two checks, each in the units that mean something for it:
- a random input (two images, two draws of z each, non-square): the dynamic shapes and the
  K*N rows of z, through ``paddle.jit.load`` and Paddle Inference. Off the image manifold a
  trained invertible network produces huge values, so the difference is judged relative to
  the output's magnitude;
- a real noisy SIDD block (docs/demo), judged in grey levels of the clipped 8-bit output, what
  a deployment delivers.
The limits sit well above the float32 spread of trained weights and far below what a wrong
program (an op mistranslated, a shape mishandled) gives, O(1); the measured spreads are in
docs/deployment.md.

``export_onnx`` converts the verified program with paddle2onnx to DIR/model.onnx, repairs
the attributes paddle2onnx gets wrong (deploy.onnx_graph) and runs the same two checks
with ONNX Runtime and OpenVINO fp32 under the same limits (their spread on the trained demo
model is of the same order as Paddle Inference's).
"""
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np
import paddle
from paddle.static import InputSpec

from core.contract import CONTRACT_FILE, Geometry, write_contract
from core.denoise import Backend, sample_latent
from deploy.paddle_inference import MODEL_PREFIX, PaddleInferenceBackend
from deploy.onnx_graph import ONNX_FILE, ONNX_OPSET, OnnxConversionError, convert_program
from networks.InvDN_model_oneForward import InvNetOneForward
from utils.image_io import read_image

RELATIVE_LIMIT = 1e-2  # random input: max |program - dynamic| / max |dynamic|
GREY_LEVEL_LIMIT = 0.25  # real block: max difference of the clipped outputs, in 8-bit grey levels
CHECK_SIZE = (64, 96)
CHECK_IMAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'docs', 'demo', 'Noisy', 'sidd_val_0_0.png')


class ExportError(RuntimeError):
    """The exported program does not reproduce the dynamic model."""


@dataclass
class CheckData:
    """The inputs of the checks and the dynamic model's outputs for them."""
    noisy: np.ndarray
    z: np.ndarray
    expected: np.ndarray
    real: np.ndarray
    real_z: np.ndarray
    expected_real: np.ndarray

    def differences(self, backend: Backend, name: str) -> Dict[str, float]:
        """``backend`` against the dynamic model: relative on the random input, grey levels
        of the clipped output on the real block (the keys of ``LIMITS``)."""
        scale = float(np.abs(self.expected).max()) or 1.0
        random = float(np.abs(backend.restore(self.noisy, self.z) - self.expected).max()) / scale
        real = 255 * float(np.abs(np.clip(backend.restore(self.real, self.real_z), 0, 1)
                                  - np.clip(self.expected_real, 0, 1)).max())
        return {f'{name}, random input': random, f'{name}, real block': real}


@dataclass
class ExportReport:
    model_dir: str
    differences: Dict[str, float]  # per check, in the unit of its limit (``LIMITS``)
    contract_path: str
    checks: CheckData
    geometry: Geometry
    extra: Dict[str, Any]  # what model_contract.json records besides the geometry


@dataclass
class OnnxExportReport:
    path: str
    differences: Dict[str, float]  # per check, in the unit of its limit (``LIMITS``)
    repairs: Dict[str, int]  # attribute paddle2onnx got wrong -> nodes repaired
    checked: Dict[str, int]  # attribute compared with the Paddle program -> nodes


# Check -> (limit, unit). The same limits for every runtime of the exported model; the float32
# spread of each runtime is thousands of times smaller, while paddle2onnx's unrepaired
# LeakyRelu alpha already costs several grey levels (docs/deployment.md).
LIMITS = {}
for _runtime in ('Paddle Inference', 'ONNX Runtime', 'OpenVINO fp32'):
    LIMITS[f'{_runtime}, random input'] = (RELATIVE_LIMIT, 'relative')
    LIMITS[f'{_runtime}, real block'] = (GREY_LEVEL_LIMIT, 'grey levels')
LIMITS['paddle.jit.load, random input'] = (RELATIVE_LIMIT, 'relative')
# The checks of export_program; export_onnx adds the ONNX Runtime (and OpenVINO) ones.
PROGRAM_CHECKS = ('paddle.jit.load, random input', 'Paddle Inference, random input',
                  'Paddle Inference, real block')


def _refuse_failed(diffs: Dict[str, float], target: str) -> None:
    failed = [name for name, diff in diffs.items() if not diff <= LIMITS[name][0]]  # also NaN
    if failed:
        raise ExportError(
            f'the exported {target} differs from the dynamic model: '
            + ', '.join(f'{name} {diffs[name]:.3g} {LIMITS[name][1]} (limit {LIMITS[name][0]:g})'
                        for name in failed) + '; do not deploy it')


def _check_records(diffs: Dict[str, float]) -> Dict[str, Dict[str, Any]]:
    return {name: {'difference': diff, 'limit': LIMITS[name][0], 'unit': LIMITS[name][1]}
            for name, diff in diffs.items()}


def exported_files(model_dir: str) -> Tuple[str, ...]:
    """The files of an export in ``model_dir`` that exist (program, parameters, contract)."""
    prefix = os.path.join(model_dir, MODEL_PREFIX)
    candidates = [prefix + ext for ext in ('.json', '.pdmodel', '.pdiparams')]
    candidates.append(os.path.join(model_dir, 'model_contract.json'))
    candidates.append(os.path.join(model_dir, ONNX_FILE))
    return tuple(path for path in candidates if os.path.exists(path))


def export_program(model: InvNetOneForward, model_dir: str, check_size: Tuple[int, int] = CHECK_SIZE,
                   weights: Optional[str] = None, use_gpu: bool = False) -> ExportReport:
    """Save ``model`` as a static program in ``model_dir``, verify it and write its contract.

    Raises ExportError (after writing the program, but before the contract) when a check
    differs from the dynamic model by more than its limit (``LIMITS``).
    """
    if not isinstance(model, InvNetOneForward):
        raise TypeError(f'export_program needs an InvNetOneForward, got {type(model).__name__}')
    geometry = Geometry.of(model)
    height, width = check_size
    if height % geometry.size_multiple or width % geometry.size_multiple:
        raise ValueError(f'check size must be multiples of {geometry.size_multiple}, got {height} {width}')
    model.eval()
    rng = np.random.default_rng(0)
    # Two images and two draws each: covers the batch, the K*N rows of z and a non-square size.
    noisy = rng.random((2, geometry.channel_in, height, width), dtype=np.float32)
    z = sample_latent((4, geometry.z_channels, height // geometry.size_multiple,
                       width // geometry.size_multiple), rng)
    real = read_image(CHECK_IMAGE).transpose(2, 0, 1)[None].astype(np.float32)
    real_z = sample_latent((1, geometry.z_channels) + tuple(d // geometry.size_multiple
                                                            for d in real.shape[2:]), rng)
    with paddle.no_grad():
        expected = model(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()
        expected_real = model(paddle.to_tensor(real), paddle.to_tensor(real_z)).numpy()

    for stale in (CONTRACT_FILE, ONNX_FILE):  # an earlier export's: written anew on success
        if os.path.exists(os.path.join(model_dir, stale)):
            os.remove(os.path.join(model_dir, stale))
    spec = [InputSpec([None, geometry.channel_in, None, None], 'float32', 'noisy'),
            InputSpec([None, geometry.z_channels, None, None], 'float32', 'z')]
    prefix = os.path.join(model_dir, MODEL_PREFIX)
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True), prefix)

    loaded = paddle.jit.load(prefix)
    loaded.eval()
    with paddle.no_grad():
        reloaded = loaded(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()
    checks = CheckData(noisy, z, expected, real, real_z, expected_real)
    scale = float(np.abs(expected).max()) or 1.0
    diffs = {'paddle.jit.load, random input': float(np.abs(reloaded - expected).max()) / scale,
             **checks.differences(PaddleInferenceBackend(model_dir, use_gpu=use_gpu, geometry=geometry),
                                  'Paddle Inference')}
    _refuse_failed(diffs, f'program in {model_dir}')
    extra = {'weights': os.path.abspath(weights) if weights else None, 'export_checks': _check_records(diffs)}
    return ExportReport(model_dir, diffs, write_contract(model_dir, geometry, extra), checks,
                        geometry, extra)


def export_onnx(report: ExportReport, cpu_threads: Optional[int] = None) -> OnnxExportReport:
    """Convert the program of ``report`` (export_program) to ``model_dir/model.onnx``.

    paddle2onnx, then the attributes it gets wrong are checked against the Paddle program and
    repaired (deploy.onnx_graph); the graph is run by ONNX Runtime (and OpenVINO fp32 when
    installed) on the export's check inputs and refused (ExportError, nothing written) when
    it differs from the dynamic model by more than ``LIMITS``. The contract records the checks.
    """
    from deploy.onnx_runtime import OnnxRuntimeBackend
    from deploy.openvino_runtime import OpenVinoBackend
    from deploy.paddle_inference import find_model_files

    program, params = find_model_files(report.model_dir)
    target = os.path.join(report.model_dir, ONNX_FILE)
    try:
        conversion = convert_program(program, params, target)
    except OnnxConversionError as err:
        raise ExportError(f'ONNX conversion of {program}: {err}') from None
    try:
        backends: Dict[str, Backend] = {
            'onnxruntime': OnnxRuntimeBackend(conversion.path, report.geometry, cpu_threads=cpu_threads)}
        try:
            backends['openvino'] = OpenVinoBackend(conversion.path, report.geometry, cpu_threads=cpu_threads)
        except ImportError:
            pass  # optional: checked when installed
        diffs = report.checks.differences(backends['onnxruntime'], 'ONNX Runtime')
        if 'openvino' in backends:
            diffs.update(report.checks.differences(backends['openvino'], 'OpenVINO fp32'))
        _refuse_failed(diffs, f'ONNX model {target}')
        os.replace(conversion.path, target)
    finally:
        if os.path.exists(conversion.path):
            os.remove(conversion.path)
    report.extra['export_checks'].update(_check_records(diffs))
    report.extra['onnx'] = {'file': ONNX_FILE, 'opset': ONNX_OPSET, 'repaired': conversion.repairs,
                            'attributes_checked': conversion.checked}
    write_contract(report.model_dir, report.geometry, report.extra)
    return OnnxExportReport(target, diffs, conversion.repairs, conversion.checked)
