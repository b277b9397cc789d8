"""A oneDNN 3x3 convolution for the CPU training step, built as a Paddle custom operator.

Paddle 3.3.1's dygraph computes conv2d on CPU as im2col + GEMM and never reaches oneDNN,
while the official PyTorch code's convolutions run in oneDNN, about twice as fast
(docs/benchmarks.md). ``conv3x3_onednn.cc`` calls the oneDNN library the Paddle wheel
ships (``paddle/libs/libdnnl.so.3``) for a 3x3, stride 1, padding 1 convolution with bias,
forward and backward. ``load()`` compiles it on first use (``paddle.utils.cpp_extension``)
into ``~/.cache/invdn/onednn_conv`` (or ``$INVDN_EXTENSION_DIR``) and loads the cached
build afterwards; it returns None, with the reason in ``unavailable_reason()``, when it
cannot be built here.

The wheel's ``include/third_party/install/onednn/include`` holds only forwarding stubs
(``dnnl.hpp`` includes ``oneapi/dnnl/dnnl.hpp``, which is not shipped), so the headers come
from the first of: ``$INVDN_ONEDNN_INCLUDE``, the wheel (should a later one ship them),
the ``onednn-devel`` package in this environment (installed with ``--no-deps`` by
tools/install.sh: oneDNN 3.6, the wheel library's version) or PyTorch's
``torch/include``, whichever is of the library's major version and not newer than it.
"""
import contextlib
import ctypes
import importlib.util
import os
import re
import shutil
import sys
from types import ModuleType
from typing import Iterator, List, Optional, Tuple

import paddle

from utils.file_lock import exclusive_lock

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conv3x3_onednn.cc')
_MODULE_NAME = 'invdn_conv3x3_onednn'
_HEADER = os.path.join('oneapi', 'dnnl', 'dnnl.hpp')

_module: Optional[ModuleType] = None
_reason: Optional[str] = None
_tried = False


def paddle_library_dir() -> str:
    """The wheel's ``libs`` folder, which holds ``libdnnl.so.3``."""
    return os.path.join(os.path.dirname(os.path.abspath(paddle.__file__)), 'libs')


def build_directory() -> str:
    """Where the operator is compiled: one folder per Paddle version (its ABI)."""
    root = os.environ.get('INVDN_EXTENSION_DIR') or os.path.join(
        os.path.expanduser('~'), '.cache', 'invdn', 'onednn_conv')
    return os.path.join(root, f'paddle-{paddle.__version__}')


class _Version(ctypes.Structure):
    _fields_ = [('major', ctypes.c_int), ('minor', ctypes.c_int), ('patch', ctypes.c_int),
                ('hash', ctypes.c_char_p), ('cpu_runtime', ctypes.c_uint), ('gpu_runtime', ctypes.c_uint)]


def library_version() -> Tuple[int, int, int]:
    """The version of the wheel's libdnnl.so.3 (``dnnl_version()``)."""
    library = ctypes.CDLL(os.path.join(paddle_library_dir(), 'libdnnl.so.3'))
    library.dnnl_version.restype = ctypes.POINTER(_Version)
    version = library.dnnl_version().contents
    return version.major, version.minor, version.patch


def header_version(include_dir: str) -> Optional[Tuple[int, int]]:
    """(major, minor) of the oneDNN headers in ``include_dir``, or None if there are none."""
    if not os.path.isfile(os.path.join(include_dir, _HEADER)):
        return None
    try:
        with open(os.path.join(include_dir, 'oneapi', 'dnnl', 'dnnl_version.h')) as f:
            text = f.read()
    except OSError:
        return None
    major = re.search(r'#define\s+DNNL_VERSION_MAJOR\s+(\d+)', text)
    minor = re.search(r'#define\s+DNNL_VERSION_MINOR\s+(\d+)', text)
    return (int(major.group(1)), int(minor.group(1))) if major and minor else None


def _header_candidates() -> List[str]:
    candidates = []
    if os.environ.get('INVDN_ONEDNN_INCLUDE'):
        candidates.append(os.environ['INVDN_ONEDNN_INCLUDE'])
    paddle_dir = os.path.dirname(os.path.abspath(paddle.__file__))
    candidates.append(os.path.join(paddle_dir, 'include', 'third_party', 'install', 'onednn', 'include'))
    candidates.append(os.path.join(sys.prefix, 'include'))
    torch_spec = importlib.util.find_spec('torch')  # its headers only: torch is not imported
    if torch_spec is not None and torch_spec.origin:
        candidates.append(os.path.join(os.path.dirname(torch_spec.origin), 'include'))
    return candidates


def find_headers(library: Tuple[int, ...]) -> Optional[str]:
    """The first include folder whose oneDNN headers the ``library`` version can serve.

    The major version must match, and the headers must not be newer than the library:
    newer headers call C functions an older library lacks (PyTorch 2.13's oneDNN 3.12
    headers call ``dnnl_memory_create_v2``, absent from the wheel's 3.6).
    """
    for include_dir in _header_candidates():
        version = header_version(include_dir)
        if version is not None and version[0] == library[0] and version[1] <= library[1]:
            return include_dir
    return None


@contextlib.contextmanager
def _output_to(path: str) -> Iterator[None]:
    """Send this process's stdout and stderr (the compiler's too) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, 'w') as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _build() -> ModuleType:
    """Compile (or load the cached build of) the operator; raises RuntimeError with the reason."""
    if not sys.platform.startswith('linux'):
        raise RuntimeError(f'the oneDNN convolution is built on Linux only, not on {sys.platform}')
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        raise RuntimeError(f'no C++ compiler ({compiler}) on PATH')
    libs = paddle_library_dir()
    if not os.path.isfile(os.path.join(libs, 'libdnnl.so.3')):
        raise RuntimeError(f'this Paddle wheel has no oneDNN library ({libs}/libdnnl.so.3)')
    library = library_version()
    include_dir = find_headers(library)
    if include_dir is None:
        raise RuntimeError(f'no oneDNN headers of version {library[0]}.0 to {library[0]}.{library[1]} (the '
                           f'wheel\'s libdnnl is {".".join(map(str, library))}): bash tools/install.sh installs '
                           'them, or set INVDN_ONEDNN_INCLUDE')
    directory = build_directory()
    os.makedirs(directory, exist_ok=True)
    log_path = os.path.join(directory, 'build.log')
    from paddle.utils.cpp_extension import load as load_extension
    try:
        # One build at a time: the ranks of a data-parallel run all load it at once.
        with exclusive_lock(os.path.join(directory, 'build.lock')), _output_to(log_path):
            return load_extension(
                name=_MODULE_NAME, sources=[_SOURCE], extra_include_paths=[include_dir],
                extra_cxx_cflags=['-O2', '-std=c++17'],
                # -z now: a symbol the library lacks fails the load here, not the process later.
                extra_ldflags=[f'-L{libs}', '-l:libdnnl.so.3', f'-Wl,-rpath,{libs}', '-Wl,-z,now'],
                build_directory=directory, verbose=False)
    except Exception as err:  # any failure of the build is the one-line reason
        raise RuntimeError(f'building the oneDNN convolution failed ({type(err).__name__}; '
                           f'log: {log_path})') from err


def load() -> Optional[ModuleType]:
    """The compiled operator module (built on the first call), or None if unavailable here."""
    global _module, _reason, _tried
    if not _tried:
        _tried = True
        try:
            _module = _build()
        except RuntimeError as err:
            _reason = str(err)
    return _module


def unavailable_reason() -> Optional[str]:
    """Why ``load()`` returned None (None after a successful load or before any)."""
    return _reason


def _openmp_runtime() -> ctypes.CDLL:
    """The OpenMP runtime the wheel's oneDNN calls.

    libdnnl.so.3 is linked against libgomp, but it is loaded as a dependency of
    libpaddle.so, whose libiomp5 (Intel OpenMP, shipped beside it) comes first and provides
    the ``omp_*`` symbols: oneDNN's threads are libiomp5's. Wheels without libiomp5 fall back
    to libgomp.
    """
    iomp = os.path.join(paddle_library_dir(), 'libiomp5.so')
    return ctypes.CDLL(iomp if os.path.isfile(iomp) else 'libgomp.so.1')


def set_num_threads(threads: int) -> None:
    """Threads of the oneDNN convolution (of this calling thread's later convolutions).

    ``import paddle`` sets ``OMP_NUM_THREADS`` to 1 before libiomp5 reads it, so without this
    call the convolution runs on one thread whatever ``MKL_NUM_THREADS`` says.
    """
    _openmp_runtime().omp_set_num_threads(int(threads))


def num_threads() -> int:
    """Threads the oneDNN convolution will use (OpenMP's ``omp_get_max_threads``)."""
    return int(_openmp_runtime().omp_get_max_threads())


def conv3x3(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """``F.conv2d(x, weight, padding=1) + bias`` through oneDNN (float32 NCHW, OIHW 3x3 weight)."""
    module = load()
    if module is None:
        raise RuntimeError(f'the oneDNN convolution is unavailable: {_reason}')
    try:
        return module.conv3x3_onednn(x, weight, bias)
    except OSError as err:  # Paddle raises the operator's input checks as OSError
        message = str(err).strip().splitlines()[0] if str(err).strip() else ''
        if message.startswith('conv3x3_onednn:'):
            raise ValueError(message) from None
        raise
