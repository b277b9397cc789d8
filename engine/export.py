"""The one exporter: InvDN as a static program for Paddle Inference.

``export_program`` saves the single-forward variant (networks/InvDN_model_oneForward.py)
with ``paddle.jit.save`` as DIR/model.json (or model.pdmodel) + DIR/model.pdiparams, inputs
``noisy [N, C, H, W]`` and ``z [K*N, z_channels, H/s, W/s]`` with dynamic N, K, H and W
(engine/contract.py). Before it returns, the saved program is loaded back and run through
``paddle.jit.load`` and through Paddle Inference on a random sample, both compared with the
dynamic model, and DIR/model_contract.json is written. export_model.py calls it, and so
does the Paddle Inference back end of predict.py and test_denoising_sidd.py.
"""
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import paddle
from paddle.static import InputSpec

from engine.contract import Geometry, write_contract
from engine.denoise import sample_latent
from engine.inference import MODEL_PREFIX, PaddleInferenceBackend
from networks.InvDN_model_oneForward import InvNetOneForward

MAX_DIFF = 1e-4
CHECK_SIZE = (64, 96)


class ExportError(RuntimeError):
    """The exported program does not reproduce the dynamic model."""


@dataclass
class ExportReport:
    model_dir: str
    max_abs_diff: Dict[str, float]  # per check: paddle.jit.load, Paddle Inference
    contract_path: str


def exported_files(model_dir: str) -> Tuple[str, ...]:
    """The files of an export in ``model_dir`` that exist (program, parameters, contract)."""
    prefix = os.path.join(model_dir, MODEL_PREFIX)
    candidates = [prefix + ext for ext in ('.json', '.pdmodel', '.pdiparams')]
    candidates.append(os.path.join(model_dir, 'model_contract.json'))
    return tuple(path for path in candidates if os.path.exists(path))


def export_program(model: InvNetOneForward, model_dir: str, check_size: Tuple[int, int] = CHECK_SIZE,
                   weights: Optional[str] = None, use_gpu: bool = False) -> ExportReport:
    """Save ``model`` as a static program in ``model_dir``, verify it and write its contract.

    Raises ExportError (after writing the program, but before the contract) when a check
    differs from the dynamic model by more than ``MAX_DIFF``.
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
    with paddle.no_grad():
        expected = model(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()

    spec = [InputSpec([None, geometry.channel_in, None, None], 'float32', 'noisy'),
            InputSpec([None, geometry.z_channels, None, None], 'float32', 'z')]
    prefix = os.path.join(model_dir, MODEL_PREFIX)
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True), prefix)

    loaded = paddle.jit.load(prefix)
    loaded.eval()
    with paddle.no_grad():
        outputs = {'paddle.jit.load': loaded(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()}
    outputs['Paddle Inference'] = PaddleInferenceBackend(model_dir, use_gpu=use_gpu).restore(noisy, z)
    diffs = {name: float(np.abs(output - expected).max()) for name, output in outputs.items()}
    if not all(diff <= MAX_DIFF for diff in diffs.values()):  # also catches NaN
        raise ExportError(
            'the exported program differs from the dynamic model: '
            + ', '.join(f'{name} max abs diff {diff:.3g}' for name, diff in diffs.items())
            + f' (limit {MAX_DIFF}); do not deploy {model_dir}')
    extra = {'weights': os.path.abspath(weights) if weights else None,
             'export_check_max_abs_diff': max(diffs.values())}
    return ExportReport(model_dir, diffs, write_contract(model_dir, geometry, extra))
