"""Process settings that make Paddle's CPU math fast; scripts call ``configure_cpu()`` first.

Paddle's CPU wheel runs dygraph GEMMs (matmul, and convolution as im2col + GEMM) in the
bundled MKL (libmklml_intel), which
- checks the CPU vendor and gives non-Intel CPUs its generic SSE code path, several times
  slower than the AVX2 path that ``MKL_DEBUG_CPU_TYPE=5`` forces;
- runs on one thread unless told otherwise (PyTorch and Paddle Inference use every core).
Figures: docs/benchmarks.md. MKL reads these variables at its first GEMM, so setting
them before the first Paddle op is enough, before or after ``import paddle``.
``OMP_NUM_THREADS`` is left alone: Paddle's import sets it to 1 (and warns about any
other value), and raising it as well made no measurable difference.
"""
import os
from typing import Dict, Optional

# MKL's AVX2 code path; honoured by the MKL 2019-2020 builds that Paddle bundles.
_MKL_AVX2_CPU_TYPE = '5'


def cpu_info() -> Dict[str, str]:
    """``vendor_id`` and ``flags`` of the first CPU in /proc/cpuinfo (empty off Linux)."""
    info = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                key = key.strip()
                if key in ('vendor_id', 'flags') and key not in info:
                    info[key] = value.strip()
                if len(info) == 2:
                    break
    except OSError:
        pass
    return info


def available_cpu_cores() -> int:
    """Cores this process may run on (respects taskset/cgroup affinity)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads() -> int:
    """Available cores, shared among the processes ``paddle.distributed.launch`` started
    on this machine (PADDLE_LOCAL_SIZE), so that they do not oversubscribe the CPU."""
    cores = available_cpu_cores()
    local_processes = int(os.environ.get('PADDLE_LOCAL_SIZE', '1') or 1)
    return max(1, cores // max(1, local_processes))


def configure_cpu(threads: Optional[int] = None) -> Dict[str, str]:
    """Apply the settings (before the first Paddle op) and return those set here.

    ``threads``: MKL threads for dygraph (default: ``default_threads()``). A variable
    the user already exported is left alone. On Intel CPUs MKL already takes its best
    path, and forcing AVX2 there would disable AVX-512, so only AMD CPUs get it.
    """
    applied = {}
    info = cpu_info()
    if info.get('vendor_id') == 'AuthenticAMD' and 'avx2' in info.get('flags', '').split():
        applied['MKL_DEBUG_CPU_TYPE'] = _MKL_AVX2_CPU_TYPE
    applied['MKL_NUM_THREADS'] = str(threads or default_threads())
    applied = {name: value for name, value in applied.items() if name not in os.environ}
    os.environ.update(applied)
    return applied
