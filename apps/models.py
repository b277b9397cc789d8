"""The model and the back end a script runs, each with one line on failure and one line
saying what was chosen.

The weights run in dygraph (``--backend dygraph``), or through an exported runtime opened from
a folder: the folder of export_model.py (infer.py), or, for the scripts that hold the weights,
the verified export that deploy.cache keeps per weights file, so only a script's first run
with new weights pays for the export.
"""
import argparse
from typing import Any, Dict, Optional

from apps import cli
from core.denoise import Backend, DygraphBackend
from deploy.cache import exported_model
from deploy.export import ExportError
from deploy.runtimes import ONNX_RUNTIMES, check_precision, open_runtime, resolve_backend
from networks import InvNet, InvNetOneForward
from networks.loading import load_network
from utils.checkpoint import WeightsError
from utils.device import on_gpu, select_device


def load_model(args: argparse.Namespace, network_class: type = InvNetOneForward) -> InvNet:
    """Select the device and load ``--weights`` (or the default weights, cli.resolve_weights)
    into ``network_class`` (networks.loading.load_network: ``--block_num``/``--scale``, else
    the checkpoint's saved config, else the paper's); exit with one line when unusable."""
    args.weights = cli.resolve_weights(args.weights)
    try:
        select_device(cli.device_from_args(args))
        return load_network(args.weights, args.block_num, args.scale, network_class)
    except WeightsError as err:
        cli.fail(f'{err}\n(weights of another architecture: pass --block_num/--scale)')
    except (OSError, ValueError, RuntimeError) as err:
        cli.fail(err)


def _said(backend: Backend, name: str, precision: str, why: str) -> Backend:
    print(f'back end: {backend.name}' + (f' (auto: {why})' if name == 'auto' else '') + f', {precision}')
    return backend


def open_backend(name: str, model: InvNetOneForward, weights: str, precision: str = 'fp32') -> Backend:
    """``model`` (loaded from ``weights``) as the back end ``name``: dygraph, or a runtime
    (deploy.runtimes; auto: the fastest installed for the device) opened from the cached,
    verified export of the weights (deploy.cache)."""
    use_gpu = on_gpu()
    try:
        runtime = resolve_backend(name, precision, gpu=use_gpu)
        if runtime == 'dygraph':
            if precision != 'fp32':
                raise ValueError(f'precision={precision} needs --backend openvino or '
                                 'paddle-inference; dygraph runs fp32')
            backend: Backend = DygraphBackend(model)
        else:
            check_precision(runtime, precision)  # before the export, not after it
            folder = exported_model(model, weights, 'onnx' if runtime in ONNX_RUNTIMES else 'paddle',
                                    use_gpu)
            backend = open_runtime(runtime, folder, use_gpu, precision)
    except (ExportError, ImportError, OSError, ValueError, RuntimeError) as err:
        cli.fail(f'back end {name}: {err} (another back end: --backend dygraph)')
    return _said(backend, name, precision, 'the fastest installed for this device')


def open_exported(name: str, model_dir: str, use_gpu: bool, precision: str, cpu_threads: Optional[int],
                  paddle_options: Optional[Dict[str, Any]] = None) -> Backend:
    """The model export_model.py wrote in ``model_dir`` as the runtime ``name`` (infer.py);
    ``paddle_options``: Paddle Inference's switches (deploy.paddle_inference)."""
    try:
        backend = open_runtime(name, model_dir, use_gpu, precision, cpu_threads, paddle_options)
    except (ImportError, OSError, ValueError, RuntimeError) as err:  # incl. InferenceModelError
        cli.fail(err)
    return _said(backend, name, precision, 'the fastest installed for this device and model folder')
