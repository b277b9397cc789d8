"""Exported models cached per weights file: the export and its verification happen once.

A script that runs the weights through an exported runtime (predict.py, the SIDD and DND
scripts with ``--backend`` paddle-inference, onnxruntime, openvino or auto on a CPU) asks
``exported_model`` for a folder. The folder is named by a key over what decides the
exported program: the weights file's content, the network's parameter names and shapes,
the format (program only, or program and ONNX), the device the export was verified on, the
versions of the packages that export and run it, and the source of the network and the
exporter. The first run exports and verifies (deploy.export) into a temporary folder and
renames it into place; later runs, and other processes, open the same folder. Two processes
that miss at once export one after the other under a lock, and the second finds the first's.

The cache lives in ``$INVDN_EXPORT_CACHE``, else ``$XDG_CACHE_HOME/invdn/exports``, else
``~/.cache/invdn/exports``; deleting it is always safe.
"""
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from typing import Callable, Optional

from core.contract import CONTRACT_FILE
from deploy.export import export_onnx, export_program
from deploy.onnx_graph import ONNX_FILE
from networks.InvDN_model_oneForward import InvNetOneForward
from utils.durable import umask_mode
from utils.file_lock import exclusive_lock

CACHE_ENV = 'INVDN_EXPORT_CACHE'
FORMATS = ('paddle', 'onnx')
_PACKAGES = ('paddlepaddle', 'paddlepaddle-gpu', 'paddle2onnx', 'onnx', 'onnxruntime', 'openvino')
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The code whose change changes the exported program or its verification.
_SOURCES = ('networks/InvDN_model.py', 'networks/InvDN_model_oneForward.py', 'deploy/export.py',
            'deploy/onnx_graph.py', 'deploy/paddle_inference.py', 'core/contract.py')


def cache_root() -> str:
    """The folder that holds the cached exports (module docstring)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'invdn', 'exports')


def _versions() -> dict:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def cache_key(model: InvNetOneForward, weights: str, fmt: str, use_gpu: bool) -> str:
    """The hex key of an export of ``model`` loaded from ``weights`` (module docstring)."""
    digest = hashlib.sha256()
    with open(weights, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    for relative in _SOURCES:
        with open(os.path.join(_REPO, relative), 'rb') as f:
            digest.update(f.read())
    shapes = [[name, list(value.shape)] for name, value in model.state_dict().items()]
    digest.update(json.dumps({'parameters': shapes, 'format': fmt, 'gpu': use_gpu,
                              'versions': _versions()}, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def is_complete(folder: str, fmt: str) -> bool:
    """Whether ``folder`` holds a verified export of ``fmt``: its contract (written only after
    the checks passed) and, for onnx, the ONNX graph the contract records."""
    try:
        with open(os.path.join(folder, CONTRACT_FILE)) as f:
            contract = json.load(f)
    except (OSError, ValueError):
        return False
    return fmt == 'paddle' or ('onnx' in contract and os.path.isfile(os.path.join(folder, ONNX_FILE)))


def cached_export(model: InvNetOneForward, weights: str, fmt: str = 'paddle', use_gpu: bool = False
                  ) -> Optional[str]:
    """The folder of the cached export ``exported_model`` would return, or None when there is
    none yet (nothing is exported)."""
    folder = os.path.join(cache_root(), cache_key(model, weights, fmt, use_gpu))
    return folder if is_complete(folder, fmt) else None


def exported_model(model: InvNetOneForward, weights: str, fmt: str = 'paddle', use_gpu: bool = False,
                   say: Optional[Callable[[str], None]] = print) -> str:
    """The folder of a verified export of ``model`` (loaded from ``weights``) in format ``fmt``:
    from the cache, or exported, verified and cached now (``say`` tells which)."""
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {FORMATS}, got {fmt!r}')
    root = cache_root()
    key = cache_key(model, weights, fmt, use_gpu)
    folder = os.path.join(root, key)
    if is_complete(folder, fmt):
        if say:
            say(f'exported model: {folder} (cached)')
        return folder
    os.makedirs(root, exist_ok=True)
    with exclusive_lock(os.path.join(root, f'.{key}.lock')):
        if is_complete(folder, fmt):  # another process exported it while this one waited
            return folder
        if say:
            say(f'exporting and verifying the model once for these weights into {folder}')
        staging = tempfile.mkdtemp(prefix=f'.{key}.', suffix='.tmp', dir=root)
        os.chmod(staging, umask_mode(directory=True))  # mkdtemp makes it private (0700)
        try:
            report = export_program(model, staging, weights=weights, use_gpu=use_gpu)
            if fmt == 'onnx':
                export_onnx(report)
            if os.path.isdir(folder):  # an incomplete entry (e.g. a disk that filled up)
                shutil.rmtree(folder)
            os.rename(staging, folder)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging)
    return folder
