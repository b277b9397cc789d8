"""CPU speed of InvDN-Paddle, side by side with the official PyTorch code (issue 7).

    python -m benchmarks.bench_cpu [--torch_repo /path/to/InvDN] [--json cpu.json]

Rows (each in its own process, so that peak memory is the row's own): the fp32 matmul
peak of this machine, dygraph denoising (engine.denoise), Paddle Inference fp32 and bf16
(oneDNN, engine.inference) on a program exported by export_model.py, and one
training step (losses.InvDNLoss, the trainer's Adam with global-norm clipping); with
--torch_repo also the official model's eager denoising and training step. Each row: the
median of --repeats timed runs after --warmup runs, GFLOP/s from the model's convolution
FLOPs, the share of the measured matmul peak, and the process's peak resident memory.
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
from typing import Callable, Dict, List, Optional

import numpy as np

from engine import cli
from utils.cpu_speed import available_cpu_cores

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))

ROWS = ('matmul_paddle', 'matmul_torch', 'dygraph', 'infer_fp32', 'infer_bf16', 'train_step',
        'torch_eager', 'torch_train_step')
TORCH_ROWS = ('matmul_torch', 'torch_eager', 'torch_train_step')
EXPORT_ROWS = ('infer_fp32', 'infer_bf16')
# JSON keys required by issue 7 -> row.
SUMMARY_KEYS = {'dygraph_s': 'dygraph', 'infer_fp32_s': 'infer_fp32', 'infer_bf16_s': 'infer_bf16',
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
    parser.add_argument('--matmul_size', type=int, default=4096, help='n of the n^3 fp32 matmul peak')
    parser.add_argument('--cpu_threads', type=int, default=None,
                        help='math threads for every row (default: all available cores, as '
                             'utils.cpu_speed, Paddle Inference and PyTorch choose)')
    parser.add_argument('--rows', nargs='+', choices=ROWS, default=None,
                        help='rows to run (default: all; torch rows only with --torch_repo)')
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


def _paddle_model(args: argparse.Namespace, network_class=None):
    import paddle

    from networks.InvDN_model import InvNet, build_invnet
    from utils.checkpoint import load_weights

    paddle.seed(0)
    model = build_invnet(3, 3, args.block_num, 4, network_class=network_class or InvNet)
    if args.weights:
        load_weights(model, args.weights)
    return model


def _training_data(args: argparse.Namespace, seed: int = 0) -> Dict[str, np.ndarray]:
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

    from engine.denoise import DenoiseOptions, DygraphBackend, denoise

    backend = DygraphBackend(_paddle_model(args))
    noisy = _denoise_inputs(args)['noisy']
    return lambda: denoise(backend, noisy, DenoiseOptions(seed=0))


def _row_infer(args, precision: str):
    from engine.inference import PaddleInferenceBackend

    backend = PaddleInferenceBackend(args.model_dir, precision=precision, cpu_threads=args.cpu_threads)
    inputs = _denoise_inputs(args)
    return lambda: backend.restore(inputs['noisy'], inputs['z'])


def row_infer_fp32(args):
    return _row_infer(args, 'fp32')


def row_infer_bf16(args):
    return _row_infer(args, 'bf16')


def row_train_step(args):
    import paddle

    from config import load_config
    from losses import InvDNLoss
    from engine.trainer import build_optimizer

    train_cfg = load_config(None).train
    model = _paddle_model(args)
    model.train()
    optimizer, _ = build_optimizer(train_cfg, model.parameters())
    criterion = InvDNLoss.from_config(train_cfg)
    data = {k: paddle.to_tensor(v) for k, v in _training_data(args).items()}

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
    data = {k: torch.from_numpy(v) for k, v in _training_data(args).items()}
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
    except RuntimeError as err:  # e.g. bf16 on a CPU without bf16 instructions
        return {'skipped': str(err)}
    times = _time(run, args.repeats, args.warmup)
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
        paddle.save(_paddle_model(args).state_dict(), weights)
    model_dir = os.path.join(workdir, 'inference')
    command = [sys.executable, os.path.join(ROOT, 'export_model.py'), '--weights', weights,
               '--save_inference_dir', model_dir, '--block_num', *map(str, args.block_num),
               '--device', 'cpu']
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f'export_model.py failed:\n{done.stdout}\n{done.stderr}')
    return model_dir


def child_command(args: argparse.Namespace, row: str, model_dir: Optional[str]) -> List[str]:
    command = [sys.executable, '-m', 'benchmarks.bench_cpu', '--run_row', row,
               '--size', str(args.size), '--batch_size', str(args.batch_size),
               '--train_batch', str(args.train_batch), '--gt_size', str(args.gt_size),
               '--block_num', *map(str, args.block_num), '--repeats', str(args.repeats),
               '--warmup', str(args.warmup), '--matmul_size', str(args.matmul_size)]
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
    return denoise_flops * args.batch_size


def print_table(results: Dict[str, Dict[str, object]], peak: Optional[float]) -> None:
    print(f'{"row":<18}{"median s":>10}{"min s":>9}{"CPU s":>8}{"GFLOP/s":>9}{"% peak":>8}{"peak MiB":>10}')
    for row, result in results.items():
        if 'skipped' in result:
            print(f'{row:<18}  skipped: {result["skipped"]}')
            continue
        share = f'{100 * result["gflops"] / peak:.0f}' if peak else '-'
        print(f'{row:<18}{result["median_s"]:>10.3f}{min(result["seconds"]):>9.3f}'
              f'{result["median_cpu_s"]:>8.2f}'
              f'{result["gflops"]:>9.1f}{share:>8}{result["peak_rss_mib"]:>10.0f}')


def targets(summary: Dict[str, Optional[float]], peak: Optional[float],
            results: Dict[str, Dict[str, object]]) -> List[str]:
    """Issue 7's targets, as measured in this run."""
    lines = []

    def ratio(a: str, b: str) -> Optional[float]:
        return summary[b] / summary[a] if summary.get(a) and summary.get(b) else None

    speedup = ratio('infer_fp32_s', 'torch_eager_s')
    if speedup:
        lines.append(f'Paddle Inference fp32 vs official PyTorch eager: {speedup:.2f}x faster (target >= 1.5x)')
    if peak and 'gflops' in results.get('infer_fp32', {}):
        lines.append(f'Paddle Inference fp32 at {100 * results["infer_fp32"]["gflops"] / peak:.0f}% '
                     'of the matmul peak (target >= 80%)')
    bf16 = ratio('infer_bf16_s', 'infer_fp32_s')
    if bf16:
        lines.append(f'bf16 vs fp32 inference: {bf16:.2f}x faster (target >= 1.8x)')
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
    # The peak is the best run of the faster library (medians suffer more from other load).
    peaks = [results[r]['flops'] / min(results[r]['seconds']) / 1e9
             for r in ('matmul_paddle', 'matmul_torch') if 'seconds' in results.get(r, {})]
    peak = max(peaks) if peaks else None
    for result in results.values():
        if 'gflops' in result and peak:
            result['share_of_peak'] = result['gflops'] / peak

    info = machine_info()
    info['load_average'] = {'before': load_before, 'after': os.getloadavg()}
    print(f'{info["date"]}  {info["cpu"]}, {info["cores"]} cores; paddle {info["paddle"]}, '
          f'torch {info.get("torch", "-")}; load average before/after: '
          f'{load_before[0]:.1f}/{info["load_average"]["after"][0]:.1f}')
    print(f'model: block_num {args.block_num}; denoising {args.batch_size}x3x{args.size}x{args.size} '
          f'= {denoise_flops * args.batch_size / 1e9:.1f} GFLOP (forward + reverse); training step '
          f'batch {args.train_batch} x {args.gt_size}^2 ~ {row_flops(args, "train_step", 0) / 1e9:.0f} GFLOP')
    print_table(results, peak)
    summary = {key: results.get(row, {}).get('median_s') for key, row in SUMMARY_KEYS.items()
               if args.torch_repo or row not in TORCH_ROWS}
    for line in targets(summary, peak, results):
        print(line)
    if args.json:
        figures = {**summary, 'matmul_peak_gflops': peak, 'machine': info,
                   'settings': {k: v for k, v in vars(args).items() if k not in ('json', 'run_row', 'model_dir')},
                   'rows': results}
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
