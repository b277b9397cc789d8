"""Process settings that make Paddle's CPU math fast; scripts call ``configure_cpu()`` first.

Paddle's CPU wheel runs dygraph GEMMs (matmul, and convolution as im2col + GEMM) in the
bundled MKL (libmklml_intel). That MKL checks the CPU vendor and gives non-Intel CPUs
its generic SSE code path: on a 2-core AMD EPYC a 2048^3 matmul ran at about 19 GFLOP/s
per core-second, and at about 80 with the AVX2 path forced by ``MKL_DEBUG_CPU_TYPE=5``
(benchmarks/README.md). MKL reads the variable when it initialises, at the first GEMM,
so setting it early in the process is enough. Paddle Inference's oneDNN path and
PyTorch are not affected.
"""
import os
from typing import Dict

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


def configure_cpu() -> Dict[str, str]:
    """Apply the settings (before the first Paddle op) and return those set here.

    A value the user already exported is left alone. On Intel CPUs nothing changes:
    MKL already takes its best path there and forcing AVX2 would disable AVX-512.
    """
    info = cpu_info()
    applied = {}
    if info.get('vendor_id') == 'AuthenticAMD' and 'avx2' in info.get('flags', '').split():
        if 'MKL_DEBUG_CPU_TYPE' not in os.environ:
            os.environ['MKL_DEBUG_CPU_TYPE'] = _MKL_AVX2_CPU_TYPE
            applied['MKL_DEBUG_CPU_TYPE'] = _MKL_AVX2_CPU_TYPE
    return applied
