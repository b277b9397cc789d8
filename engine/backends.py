"""Choosing the back end that runs a loaded model for the denoise routine (engine.denoise)."""
import tempfile

from engine.contract import BACKENDS
from engine.denoise import Backend, DygraphBackend
from engine.export import export_program
from networks.InvDN_model_oneForward import InvNetOneForward
from utils.device import on_gpu


def resolve_backend(name: str) -> str:
    """``auto``: Paddle Inference on CPU (oneDNN, several times faster than dygraph there),
    dygraph on GPU."""
    if name not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {name!r}')
    if name != 'auto':
        return name
    return 'dygraph' if on_gpu() else 'paddle-inference'


def open_backend(name: str, model: InvNetOneForward) -> Backend:
    """``model`` as the back end ``name``; paddle-inference exports it with the one exporter
    (engine.export, verified) to a temporary folder and loads the program from there."""
    name = resolve_backend(name)
    if name == 'dygraph':
        return DygraphBackend(model)
    use_gpu = on_gpu()
    with tempfile.TemporaryDirectory(prefix='invdn_export_') as model_dir:
        # The predictor that checked the export holds the program and weights in memory:
        # it is the back end, and the folder can go.
        return export_program(model, model_dir, use_gpu=use_gpu).backend
