"""CPU speed of InvDN-Paddle and its deployment back ends, side by side with the official
PyTorch code.

    python -m benchmarks.bench_cpu [--torch_repo /path/to/InvDN] [--json cpu.json]

Rows (each in its own process, so that peak memory is the row's own): the fp32 and bf16
matmul peaks of this machine, dygraph denoising (core.denoise), every back end of an
export (export_model.py --format onnx) in each precision it has -- Paddle Inference fp32 and
bf16 (oneDNN), ONNX Runtime fp32, OpenVINO fp32 and bf16 -- one training step
(losses.InvDNLoss, the trainer's Adam with global-norm clipping), and a large image
(--large_mp megapixels, tiled by core.denoise) per back end; with --torch_repo also the
official model's eager denoising and training step. Each row: the median of --repeats
timed runs after --warmup runs (the large rows: one run after a warm-up tile), GFLOP/s from
the model's convolution FLOPs, the share of the measured fp32 and bf16 matmul peaks, and the
process's peak resident memory. Rows whose package or CPU feature is missing say so.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from apps import cli
from utils.cpu_speed import available_cpu_cores

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))

# (back end, precision) of the exported model's rows.
INFER_BACKENDS = (('paddle-inference', 'fp32'), ('paddle-inference', 'bf16'), ('onnxruntime', 'fp32'),
                  ('openvino', 'fp32'), ('openvino', 'bf16'))


def _infer_row(backend: str, precision: str, large: bool = False) -> str:
    return f'{"large" if large else "infer"}_{backend.replace("-", "_")}_{precision}'


INFER_ROWS = tuple(_infer_row(*pair) for pair in INFER_BACKENDS)
LARGE_ROWS = tuple(_infer_row(*pair, large=True) for pair in INFER_BACKENDS)
ROWS = ('matmul_paddle', 'matmul_torch', 'matmul_torch_bf16', 'matmul_openvino_bf16', 'dygraph',
        *INFER_ROWS, 'train_step', 'torch_eager', 'torch_train_step', *LARGE_ROWS)
TORCH_ROWS = ('matmul_torch', 'matmul_torch_bf16', 'torch_eager', 'torch_train_step')
EXPORT_ROWS = INFER_ROWS + LARGE_ROWS
FP32_PEAK_ROWS = ('matmul_paddle', 'matmul_torch')
BF16_PEAK_ROWS = ('matmul_torch_bf16', 'matmul_openvino_bf16')
# JSON keys -> row: every back end and precision as infer_<backend>_<precision>_s, and the
# keys of issue 7 (infer_fp32_s, infer_bf16_s: Paddle Inference).
SUMMARY_KEYS = {'dygraph_s': 'dygraph', **{f'{row}_s': row for row in INFER_ROWS + LARGE_ROWS},
                'infer_fp32_s': 'infer_paddle_inference_fp32', 'infer_bf16_s': 'infer_paddle_inference_bf16',
                'train_step_s': 'train_step', 'torch_eager_s': 'torch_eager',
                'torch_train_step_s': 'torch_train_step'}
# A backward pass through a convolution costs two forward passes (input and weight grads).
TRAIN_FLOP_FACTOR = 3


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--size', type=int, default=256,
                        help='height and width of the denoised image (a multiple of 4)')
    parser.add_argument('--batch_size', type=int, default=1, help='images per denoising call')
    parser.add_argument('--train_batch', type=int, default=4, help='batch size of the training step')
    parser.add_argument('--gt_size', type=int, default=144, help='training crop size (GT_size)')
    parser.add_argument('--block_num', type=int, nargs=2, default=[8, 8],
                        help="coupling blocks per stage (the paper's 8 8; smaller for a quick run)")
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per row (median reported)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs before timing')
    parser.add_argument('--matmul_size', type=int, default=4096, help='n of the n^3 matmul peaks')
    parser.add_argument('--cpu_threads', type=int, default=None,
                        help='math threads for every row (default: all available cores, as '
                             'utils.cpu_speed, Paddle Inference and PyTorch choose)')
    parser.add_argument('--rows', nargs='+', choices=ROWS, default=None,
                        help='rows to run (default: all; torch rows only with --torch_repo)')
    parser.add_argument('--large_mp', type=float, default=12.0,
                        help='megapixels of the large-image rows (4:3), denoised in tiles')
    parser.add_argument('--tile', type=int, default=512, help='tile size of the large-image rows')
    parser.add_argument('--weights', default=None,
                        help='Paddle weights for the model (default: seeded random initialisation; '
                             'speed does not depend on the values)')
    parser.add_argument('--torch_repo', '--torch-repo', default=None,
                        help='checkout of the official InvDN (or its codes/) for the PyTorch rows')
    cli.add_bool_arg(parser, '--cpu_config', default=True,
                     help='apply utils.cpu_speed.configure_cpu (False: measure what it gains)')
    parser.add_argument('--json', default=None, help='write the figures to this JSON file')
    parser.add_argument('--run_row', choices=ROWS, default=None,
                        help='internal: run one row in this process and print its JSON')
    parser.add_argument('--model_dir', default=None, help='internal: exported model for the infer rows')
    args = parser.parse_args(argv)
    for name in ('size', 'gt_size'):
        if getattr(args, name) % 4:
            parser.error(f'--{name.replace("_", "-")} must be a multiple of 4, got {getattr(args, name)}')
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    return args


# ---------------------------------------------------------------- rows (child process)

def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time(run: Callable[[], object], repeats: int, warmup: int) -> Dict[str, List[float]]:
    """Wall seconds per run, and CPU seconds (all threads): on a shared machine the wall
    time grows with the other processes' load, the CPU time much less."""
    for _ in range(warmup):
        run()
    times = {'seconds': [], 'cpu_seconds': []}
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        run()
        times['seconds'].append(time.perf_counter() - start)
        times['cpu_seconds'].append(_cpu_seconds() - start_cpu)
    return times


def paddle_model(args: argparse.Namespace, network_class=None, conv3x3=None):
    """The network of ``args.block_num``, seeded (or ``args.weights``), with ``conv3x3`` as its
    dynamic-graph convolution (networks.build_invnet); shared with train_levers."""
    import paddle

    from networks.InvDN_model import InvNet, build_invnet
    from utils.checkpoint import load_weights

    paddle.seed(0)
    model = build_invnet(3, 3, args.block_num, 4, network_class=network_class or InvNet, conv3x3=conv3x3)
    if args.weights:
        load_weights(model, args.weights)
    return model


def training_data(args: argparse.Namespace, seed: int = 0) -> Dict[str, np.ndarray]:
    """A seeded GT/Noisy/LQ batch of ``args.train_batch`` x ``args.gt_size``^2 crops."""
    rng = np.random.default_rng(seed)
    shape = (args.train_batch, 3, args.gt_size, args.gt_size)
    gt = rng.random(shape, dtype=np.float32)
    noisy = np.clip(gt + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    lq = gt.reshape(shape[0], 3, shape[2] // 4, 4, shape[3] // 4, 4).mean(axis=(3, 5))
    return {'gt': gt, 'noisy': noisy, 'lq': lq}


def _denoise_inputs(args: argparse.Namespace, z_channels: int = 45) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    size = args.size
    return {'noisy': rng.random((args.batch_size, 3, size, size), dtype=np.float32),
            'z': rng.standard_normal((args.batch_size, z_channels, size // 4, size // 4),
                                     dtype=np.float32)}


def row_matmul_paddle(args):
    import paddle

    a, b = paddle.randn([args.matmul_size] * 2), paddle.randn([args.matmul_size] * 2)
    return lambda: paddle.matmul(a, b)


def row_matmul_torch(args):
    import torch

    a, b = torch.randn(args.matmul_size, args.matmul_size), torch.randn(args.matmul_size, args.matmul_size)
    return lambda: a @ b


def row_dygraph(args):

    from core.denoise import DenoiseOptions, DygraphBackend, denoise

    backend = DygraphBackend(paddle_model(args))
    noisy = _denoise_inputs(args)['noisy']
    return lambda: denoise(backend, noisy, DenoiseOptions(seed=0))


def row_matmul_torch_bf16(args):
    import torch

    a, b = (torch.randn(args.matmul_size, args.matmul_size).to(torch.bfloat16) for _ in range(2))
    return lambda: a @ b


def row_matmul_openvino_bf16(args):
    """OpenVINO's own bf16 GEMM (inference precision hint bf16), what its bf16 rows run on."""
    from deploy.openvino_runtime import openvino_bf16_supported
    from deploy.onnx_graph import require

    ov = require('openvino')
    if not openvino_bf16_supported():
        raise RuntimeError('this CPU has no AVX512-BF16/AMX')
    from openvino import opset13 as ops

    n = args.matmul_size
    a = ops.parameter([n, n], np.float32, name='a')
    b = ops.constant(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    model = ov.Model([ops.matmul(a, b, False, False)], [a])
    compiled = ov.Core().compile_model(model, 'CPU', {
        'INFERENCE_PRECISION_HINT': 'bf16', 'PERFORMANCE_HINT': 'LATENCY',
        'INFERENCE_NUM_THREADS': args.cpu_threads or available_cpu_cores()})
    request = compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    return lambda: request.infer({0: x})


def _open_exported(args, row: str):
    from deploy.runtimes import open_runtime

    for backend, precision in INFER_BACKENDS:
        if row in (_infer_row(backend, precision), _infer_row(backend, precision, large=True)):
            return open_runtime(backend, args.model_dir, precision=precision,
                                         cpu_threads=args.cpu_threads)
    raise ValueError(row)


def _row_infer(args):
    backend = _open_exported(args, args.run_row)
    inputs = _denoise_inputs(args)
    return lambda: backend.restore(inputs['noisy'], inputs['z'])


def large_image_size(megapixels: float) -> Tuple[int, int]:
    """(height, width) of a 4:3 image of about ``megapixels``, multiples of 4."""
    height = int(round((megapixels * 1e6 * 3 / 4) ** 0.5 / 4)) * 4
    return height, int(round(height * 4 / 3 / 4)) * 4


def _row_large(args):
    from core.denoise import DenoiseOptions, denoise

    backend = _open_exported(args, args.run_row)
    height, width = large_image_size(args.large_mp)
    noisy = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    options = DenoiseOptions(seed=0, tile=args.tile)
    tile = noisy[:, :, :args.tile, :args.tile]
    denoise(backend, tile, DenoiseOptions(seed=0))  # warm-up: the runtime's first-call set-up
    return lambda: denoise(backend, noisy, options)


for _row in INFER_ROWS:
    globals()[f'row_{_row}'] = _row_infer
for _row in LARGE_ROWS:
    globals()[f'row_{_row}'] = _row_large


def row_train_step(args):
    import paddle

    from config import load_config
    from losses import InvDNLoss
    from training.devices import select_cpu_conv
    from training.optim import build_optimizer

    train_cfg = load_config(None).train
    conv3x3, convolutions = select_cpu_conv(train_cfg.cpu_conv)  # the trainer's default
    print(f'train_step: {convolutions}', file=sys.stderr)
    model = paddle_model(args, conv3x3=conv3x3)
    model.train()
    optimizer, _ = build_optimizer(train_cfg, model.parameters())
    criterion = InvDNLoss.from_config(train_cfg)
    data = {k: paddle.to_tensor(v) for k, v in training_data(args).items()}

    def step():
        total, _ = criterion(model, data['noisy'], data['lq'], data['gt'])
        total.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(total)
    return step


def _official(args):
    from tools.align_with_torch import import_official, official_codes_dir

    official = import_official(official_codes_dir(args.torch_repo))
    import torch

    torch.manual_seed(0)
    net = official.Inv_arch.InvNet(3, 3, official.Subnet_constructor.subnet('Resnet'),
                                   list(args.block_num), 2)
    return official, net


def row_torch_eager(args):
    import torch

    _, net = _official(args)
    net.eval()
    inputs = {k: torch.from_numpy(v) for k, v in _denoise_inputs(args).items()}

    def run():
        # The official test(): forward, keep the LR image, attach z, reverse.
        with torch.no_grad():
            out = net(x=inputs['noisy'])
            return net(x=torch.cat((out[:, :3], inputs['z']), dim=1), rev=True)[:, :3]
    return run


def row_torch_train_step(args):
    import torch

    from config import load_config
    from tools.align_with_torch import OfficialObjective

    train_cfg = load_config(None).train
    official, net = _official(args)
    net.train()
    objective = OfficialObjective(official, torch.float32)
    optimizer = torch.optim.Adam(net.parameters(), lr=train_cfg.lr_G,
                                 betas=(train_cfg.beta1, train_cfg.beta2),
                                 weight_decay=train_cfg.weight_decay_G)
    data = {k: torch.from_numpy(v) for k, v in training_data(args).items()}
    z_shape = (args.train_batch, 45, args.gt_size // 4, args.gt_size // 4)

    def step():
        # The official optimize_parameters: z drawn per step, clip_grad_norm_, Adam.
        optimizer.zero_grad()
        total, _ = objective(net, data['noisy'], data['lq'], data['gt'], torch.randn(z_shape))
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), train_cfg.gradient_clipping)
        optimizer.step()
        return float(total)
    return step


def run_row(args: argparse.Namespace) -> Dict[str, object]:
    """Set up one row, time it and return its figures (called in the child process)."""
    if args.cpu_threads:
        if args.run_row in TORCH_ROWS:
            import torch

            torch.set_num_threads(args.cpu_threads)
    try:
        run = globals()[f'row_{args.run_row}'](args)
    except (ImportError, RuntimeError) as err:  # a missing package, bf16 without bf16 instructions
        return {'skipped': str(err)}
    large = args.run_row in LARGE_ROWS
    times = _time(run, 1 if large else args.repeats, 0 if large else args.warmup)
    # ru_maxrss is in KiB on Linux.
    return {**times, 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ---------------------------------------------------------------- driver (parent process)

def model_flops(block_num: List[int], height: int, width: int) -> float:
    """FLOPs (2 per multiply-add) of one forward + one reverse pass over a 3 x H x W image.

    Counted from the model's convolutions with forward hooks on a small input and scaled
    to H x W (every convolution's cost is proportional to the pixel count). The fixed
    Haar transforms (F.conv2d, 4 multiply-adds per output value) are left out: < 0.01%.
    """
    import paddle

    from networks.InvDN_model import build_invnet

    model = build_invnet(3, 3, block_num, 4)
    macs = []

    def count(layer, _inputs, output):
        macs.append(int(np.prod(output.shape)) * int(np.prod(layer.weight.shape[1:])))

    hooks = [layer.register_forward_post_hook(count) for layer in model.sublayers()
             if isinstance(layer, paddle.nn.Conv2D)]
    probe = 32
    with paddle.no_grad():
        latent = model(paddle.zeros([1, 3, probe, probe]))
        model(latent, rev=True)
    for hook in hooks:
        hook.remove()
    return 2.0 * sum(macs) * height * width / probe ** 2


def machine_info() -> Dict[str, object]:
    import paddle

    model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                  if line.startswith('model name')), platform.processor()) \
        if os.path.exists('/proc/cpuinfo') else platform.processor()
    info = {'date': datetime.datetime.now().isoformat(timespec='seconds'), 'cpu': model,
            'cores': available_cpu_cores(),
            'python': platform.python_version(), 'paddle': paddle.__version__,
            'bf16_cpu': bool(paddle.base.core.supports_bfloat16())}
    try:
        import torch

        info['torch'] = torch.__version__
    except ImportError:
        pass
    return info


def export_model(args: argparse.Namespace, workdir: str) -> str:
    """Export the model with export_model.py (the users' path) into ``workdir``."""
    import paddle

    weights = args.weights
    if weights is None:
        weights = os.path.join(workdir, 'random.pdparams')
        paddle.save(paddle_model(args).state_dict(), weights)
    model_dir = os.path.join(workdir, 'inference')
    command = [sys.executable, os.path.join(ROOT, 'export_model.py'), '--weights', weights,
               '--save_inference_dir', model_dir, '--block_num', *map(str, args.block_num),
               '--device', 'cpu']
    import importlib.util

    if all(importlib.util.find_spec(p) for p in ('paddle2onnx', 'onnx', 'onnxruntime')):
        command += ['--format', 'onnx']  # without it the ONNX rows say which package is missing
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f'export_model.py failed:\n{done.stdout}\n{done.stderr}')
    return model_dir


def child_command(args: argparse.Namespace, row: str, model_dir: Optional[str]) -> List[str]:
    command = [sys.executable, '-m', 'benchmarks.bench_cpu', '--run_row', row,
               '--size', str(args.size), '--batch_size', str(args.batch_size),
               '--train_batch', str(args.train_batch), '--gt_size', str(args.gt_size),
               '--block_num', *map(str, args.block_num), '--repeats', str(args.repeats),
               '--warmup', str(args.warmup), '--matmul_size', str(args.matmul_size),
               '--large_mp', str(args.large_mp), '--tile', str(args.tile)]
    for flag, value in (('--cpu_threads', args.cpu_threads), ('--weights', args.weights),
                        ('--torch_repo', args.torch_repo), ('--model_dir', model_dir)):
        if value is not None:
            command += [flag, str(value)]
    command += ['--cpu_config', str(args.cpu_config)]
    return command


def child_env(args: argparse.Namespace, row: str) -> Dict[str, str]:
    env = dict(os.environ)
    # Paddle's dygraph GEMMs run on MKL threads (utils.cpu_speed), fixed at the first
    # GEMM; the machine's matmul peak uses every core.
    threads = args.cpu_threads or (available_cpu_cores() if row == 'matmul_paddle' else None)
    if threads:
        env['MKL_NUM_THREADS'] = str(threads)
    return env


def row_flops(args: argparse.Namespace, row: str, denoise_flops: float) -> float:
    if row.startswith('matmul'):
        return 2.0 * args.matmul_size ** 3
    if row in ('train_step', 'torch_train_step'):
        per_image = model_flops(args.block_num, args.gt_size, args.gt_size)
        return TRAIN_FLOP_FACTOR * per_image * args.train_batch
    if row in LARGE_ROWS:  # the pixels denoised, tile overlaps included
        height, width = large_image_size(args.large_mp)
        tiled = sum(_tile_extent(height, args.tile)) * sum(_tile_extent(width, args.tile))
        return denoise_flops * tiled / args.size ** 2
    return denoise_flops * args.batch_size


def _tile_extent(size: int, tile: int, overlap: int = 32) -> List[int]:
    """Lengths of the tiles core.denoise cuts along one axis."""
    from core.denoise import _tile_starts

    stride = max(4, (tile - overlap) // 4 * 4)
    return [min(tile, size - start) for start in _tile_starts(size, tile, stride)]


def print_table(results: Dict[str, Dict[str, object]], peaks: Dict[str, Optional[float]]) -> None:
    width = max(len(row) for row in results) + 2 if results else 20
    print(f'{"row":<{width}}{"median s":>10}{"min s":>9}{"CPU s":>8}{"GFLOP/s":>9}{"GF/CPU-s":>9}'
          f'{"% fp32 pk":>10}{"% bf16 pk":>10}{"peak MiB":>10}')
    for row, result in results.items():
        if 'skipped' in result:
            print(f'{row:<{width}}  skipped: {result["skipped"]}')
            continue
        shares = [f'{100 * result["gflops"] / peaks[p]:.0f}' if peaks.get(p) else '-'
                  for p in ('fp32', 'bf16')]
        print(f'{row:<{width}}{result["median_s"]:>10.3f}{min(result["seconds"]):>9.3f}'
              f'{result["median_cpu_s"]:>8.2f}{result["gflops"]:>9.1f}{result["gflops_per_cpu_s"]:>9.1f}'
              f'{shares[0]:>10}{shares[1]:>10}'
              f'{result["peak_rss_mib"]:>10.0f}')


def targets(summary: Dict[str, Optional[float]], peaks: Dict[str, Optional[float]],
            results: Dict[str, Dict[str, object]]) -> List[str]:
    """The targets of issues 7 and 12, as measured in this run."""
    lines = []

    def ratio(a: str, b: str) -> Optional[float]:
        return summary[b] / summary[a] if summary.get(a) and summary.get(b) else None

    speedup = ratio('infer_fp32_s', 'torch_eager_s')
    if speedup:
        lines.append(f'Paddle Inference fp32 vs official PyTorch eager: {speedup:.2f}x faster (target >= 1.5x)')
    fp32_rows = [row for row in INFER_ROWS if row.endswith('fp32') and summary.get(f'{row}_s')]
    fastest = min(fp32_rows, key=lambda row: summary[f'{row}_s']) if fp32_rows else None
    if fastest and summary.get('torch_eager_s'):
        lines.append(f'fastest fp32 back end ({fastest}) vs official PyTorch eager: '
                     f'{ratio(f"{fastest}_s", "torch_eager_s"):.2f}x faster (target >= 2x)')
    if fastest and peaks.get('fp32'):
        lines.append(f'{fastest} at {100 * results[fastest]["gflops"] / peaks["fp32"]:.0f}% of the fp32 '
                     'matmul peak')
    bf16 = 'infer_openvino_bf16'
    if summary.get(f'{bf16}_s'):
        if summary.get('torch_eager_s'):
            lines.append(f'OpenVINO bf16 vs official PyTorch eager: {ratio(f"{bf16}_s", "torch_eager_s"):.2f}x '
                         'faster (target >= 3.5x)')
        if fastest:
            lines.append(f'OpenVINO bf16 vs the fastest fp32 back end: '
                         f'{ratio(f"{bf16}_s", f"{fastest}_s"):.2f}x faster (target >= 1.8x)')
        if peaks.get('bf16'):
            lines.append(f'OpenVINO bf16 at {100 * results[bf16]["gflops"] / peaks["bf16"]:.0f}% of the '
                         'bf16 matmul peak (target >= 80%)')
    paddle_bf16 = ratio('infer_bf16_s', 'infer_fp32_s')
    if paddle_bf16:
        lines.append(f'Paddle Inference bf16 vs its fp32: {paddle_bf16:.2f}x faster')
    train = ratio('torch_train_step_s', 'train_step_s')
    if train:
        lines.append(f'training step: Paddle / official PyTorch = {train:.2f} (target <= 1.5)')
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    from utils.console import quiet_paddle

    quiet_paddle(args.verbose)
    if args.cpu_config:
        from utils.cpu_speed import configure_cpu

        configure_cpu()
    if args.run_row:
        print(json.dumps(run_row(args)))
        return
    rows = list(args.rows or ROWS)
    if args.torch_repo is None:
        rows = [row for row in rows if row not in TORCH_ROWS]
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix='invdn_bench_') as workdir:
        model_dir = export_model(args, workdir) if any(r in EXPORT_ROWS for r in rows) else None
        for row in rows:
            done = subprocess.run(child_command(args, row, model_dir), env=child_env(args, row),
                                  capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                results[row] = {'skipped': f'exit status {done.returncode}: '
                                           f'{(done.stderr.strip().splitlines() or [""])[-1]}'}
            else:
                results[row] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f'{row}: done', file=sys.stderr)
    denoise_flops = model_flops(args.block_num, args.size, args.size)
    for row, result in results.items():
        if 'seconds' in result:
            result['median_s'] = float(np.median(result['seconds']))
            result['median_cpu_s'] = float(np.median(result['cpu_seconds']))
            result['flops'] = row_flops(args, row, denoise_flops)
            result['gflops'] = result['flops'] / result['median_s'] / 1e9
            # Per CPU-second (all threads): steadier than wall time on a shared machine.
            result['gflops_per_cpu_s'] = result['flops'] / result['median_cpu_s'] / 1e9
    # Each peak is the best run of the faster library (medians suffer more from other load).
    peaks: Dict[str, Optional[float]] = {}
    for precision, peak_rows in (('fp32', FP32_PEAK_ROWS), ('bf16', BF16_PEAK_ROWS)):
        measured = [results[r]['flops'] / min(results[r]['seconds']) / 1e9
                    for r in peak_rows if 'seconds' in results.get(r, {})]
        peaks[precision] = max(measured) if measured else None
    for result in results.values():
        for precision, peak in peaks.items():
            if 'gflops' in result and peak:
                result[f'share_of_{precision}_peak'] = result['gflops'] / peak

    info = machine_info()
    info['load_average'] = {'before': load_before, 'after': os.getloadavg()}
    print(f'{info["date"]}  {info["cpu"]}, {info["cores"]} cores; paddle {info["paddle"]}, '
          f'torch {info.get("torch", "-")}; load average before/after: '
          f'{load_before[0]:.1f}/{info["load_average"]["after"][0]:.1f}')
    print(f'model: block_num {args.block_num}; denoising {args.batch_size}x3x{args.size}x{args.size} '
          f'= {denoise_flops * args.batch_size / 1e9:.1f} GFLOP (forward + reverse); training step '
          f'batch {args.train_batch} x {args.gt_size}^2 ~ {row_flops(args, "train_step", 0) / 1e9:.0f} GFLOP')
    height, width = large_image_size(args.large_mp)
    print(f'large rows: one {width}x{height} image ({height * width / 1e6:.1f} MP) in {args.tile}px tiles')
    print_table(results, peaks)
    summary = {key: results.get(row, {}).get('median_s') for key, row in SUMMARY_KEYS.items()
               if args.torch_repo or row not in TORCH_ROWS}
    for line in targets(summary, peaks, results):
        print(line)
    if args.json:
        figures = {**summary, 'matmul_peak_gflops': peaks['fp32'], 'matmul_bf16_peak_gflops': peaks['bf16'],
                   'machine': info,
                   'settings': {k: v for k, v in vars(args).items() if k not in ('json', 'run_row', 'model_dir')},
                   'rows': results}
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
