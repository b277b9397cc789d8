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
from core.denoise import Backend, DenoiseOptions, DygraphBackend
from deploy.cache import cached_export, exported_model
from deploy.export import ExportError
from deploy.runtimes import ONNX_RUNTIMES, auto_precision, check_precision, open_runtime, resolve_backend
from networks import InvNet, InvNetOneForward
from networks.loading import load_network
from utils.checkpoint import WeightsError
from utils.device import on_gpu, select_device


def load_model(args: argparse.Namespace, network_class: type = InvNetOneForward,
               options: Optional[DenoiseOptions] = None) -> InvNet:
    """Select the device and load ``--weights`` (or the default weights, cli.resolve_weights)
    into ``network_class`` (networks.loading.load_network: ``--block_num``/``--scale``, else
    the checkpoint's saved config, else the paper's); exit with one line when unusable, or
    when ``options`` cannot work with the network (a tile that is not a multiple of its
    downsampling factor)."""
    args.weights = cli.resolve_weights(args.weights)
    try:
        select_device(cli.device_from_args(args))
        model = load_network(args.weights, args.block_num, args.scale, network_class)
    except WeightsError as err:
        hint = ('\n(weights of another architecture: pass --block_num/--scale)'
                if 'does not match the model' in str(err) else '')
        cli.fail(f'{err}{hint}')
    except (OSError, ValueError, RuntimeError) as err:
        cli.fail(err)
    if options is not None:
        try:
            options.check(model.size_multiple)
        except ValueError as err:
            cli.fail(err)
    return model


def _said(backend: Backend, name: str, precision: str, why: str) -> Backend:
    print(f'back end: {backend.name}' + (f' (auto: {why})' if name == 'auto' else '')
          + f', {backend_precision(backend)}' + (' (auto: the CPU has AVX512-BF16/AMX)'
                                                 if precision == 'auto' and backend_precision(backend) == 'bf16'
                                                 else ''))
    return backend


def backend_precision(backend: Backend) -> str:
    return getattr(backend, 'precision', 'fp32')


# Below this much denoising (megapixels times ensemble variants times Monte-Carlo samples)
# exporting for the fastest runtime costs more than it saves (docs/photos.md#back-ends).
EXPORT_PAYS_OFF_MEGAPIXELS = 1.0


def open_backend(name: str, model: InvNetOneForward, weights: str, precision: str = 'auto',
                 work_megapixels: Optional[float] = None) -> Backend:
    """``model`` (loaded from ``weights``) as the back end ``name``: dygraph, or a runtime
    (deploy.runtimes) opened from the cached, verified export of the weights (deploy.cache).

    ``auto``: the fastest runtime installed for the device, except that a job of
    ``work_megapixels`` below EXPORT_PAYS_OFF_MEGAPIXELS runs in dygraph when the weights
    have no cached export yet. ``precision`` auto: for such a small job fp32, on which every
    back end gives the same images to a grey level, so that the result does not depend on
    whether an export was cached; for a larger one bf16 where the runtime and CPU have it
    (deploy.runtimes.auto_precision), else fp32."""
    use_gpu = on_gpu()
    why, asked_precision = 'the fastest installed for this device', precision
    if precision == 'fp16' and not use_gpu:
        cli.fail('precision fp16 is a GPU precision; on this CPU use --precision fp32, or bf16 '
                 '(OpenVINO, Paddle Inference) where the CPU has AVX512-BF16/AMX')
    try:
        runtime = resolve_backend(name, 'fp32' if precision == 'auto' else precision, gpu=use_gpu)
        fmt = 'onnx' if runtime in ONNX_RUNTIMES else 'paddle'
        if (name == 'auto' and runtime != 'dygraph' and work_megapixels is not None
                and work_megapixels < EXPORT_PAYS_OFF_MEGAPIXELS
                and cached_export(model, weights, fmt, use_gpu) is None):
            why = (f'{work_megapixels:.2f} MP to denoise, too little to pay back exporting for '
                   f'{runtime}, which happens once per weights file: --backend {runtime}')
            runtime = 'dygraph'
        if precision == 'auto':  # small jobs fp32, so that a cached export changes no result
            small = work_megapixels is not None and work_megapixels < EXPORT_PAYS_OFF_MEGAPIXELS
            precision = 'fp32' if small else auto_precision(runtime, use_gpu)
        if runtime == 'dygraph':
            if precision != 'fp32':
                raise ValueError(f'precision={precision} needs --backend openvino or '
                                 'paddle-inference; dygraph runs fp32')
            backend: Backend = DygraphBackend(model)
        else:
            check_precision(runtime, precision)  # before the export, not after it
            backend = open_runtime(runtime, exported_model(model, weights, fmt, use_gpu), use_gpu,
                                   precision)
    except (ExportError, ImportError, OSError, ValueError, RuntimeError) as err:
        cli.fail(f'back end {name}: {err} (another back end: --backend dygraph)')
    return _said(backend, name, asked_precision, why)


def open_exported(name: str, model_dir: str, use_gpu: bool, precision: str, cpu_threads: Optional[int],
                  paddle_options: Optional[Dict[str, Any]] = None) -> Backend:
    """The model export_model.py wrote in ``model_dir`` as the runtime ``name`` (infer.py);
    ``paddle_options``: Paddle Inference's switches (deploy.paddle_inference)."""
    try:
        backend = open_runtime(name, model_dir, use_gpu, precision, cpu_threads, paddle_options)
    except (ImportError, OSError, ValueError, RuntimeError) as err:  # incl. InferenceModelError
        cli.fail(err)
    return _said(backend, name, precision, 'the fastest installed for this device and model folder')
