"""The levers Paddle offers for a faster training step on CPU, each measured (issue 13).

    python -m benchmarks.train_levers --torch_repo ../InvDN [--threads 1] [--json levers.json]

Each lever runs in its own process (a lever that crashes, e.g. with a segmentation fault,
cannot take the others down) and is compared with the training step on Paddle's own kernels,
dygraph float32 NCHW (`baseline`), and with the official PyTorch step (`torch`):

| lever | what runs |
| --- | --- |
| `baseline` | the trainer's step with Paddle's own convolution (`train.cpu_conv=paddle`): losses.InvDNLoss, backward, multi-tensor Adam with clipping |
| `onednn_flag` | the same with FLAGS_use_mkldnn / FLAGS_use_onednn set (do dygraph kernels change?) |
| `to_static` | the loss (forward + reverse + terms) as one `paddle.jit.to_static` program |
| `to_static_onednn` | that program with the oneDNN flags, i.e. the static executor's oneDNN kernels |
| `bf16_autocast` | `paddle.amp.auto_cast(dtype='bfloat16')`, level O1 (the loss stays float32) |
| `cinn` | the program compiled by CINN, when this Paddle build has it |
| `onednn_conv` | the baseline with every Conv3x3 through the oneDNN custom operator (ops/onednn_conv): the trainer's CPU default (`train.cpu_conv=auto`) |
| `conv_nchw`, `conv_nhwc`, `conv_torch` | one 3x3 conv 64->64 (the coupling subnet's) forward + backward at the training step's shape, in each layout, and PyTorch's |
| `conv_static_onednn` | that conv as a `to_static` program with the oneDNN flags (no conv_transpose in it) |
| `conv_onednn` | that conv (with its bias) through the oneDNN custom operator |

Columns: median wall and CPU seconds per step (per conv for the conv rows), the step's
losses against the baseline's (the same seed and batch: a lever may not change what is
learned), and the status: the error's first line for a lever that fails. ``--threads 1``
measures CPU efficiency apart from thread scaling and from other jobs on the machine.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from apps import cli
from utils.cpu_speed import available_cpu_cores, configure_cpu

LEVERS = ('baseline', 'onednn_flag', 'to_static', 'to_static_onednn', 'bf16_autocast', 'cinn', 'onednn_conv',
          'conv_nchw', 'conv_nhwc', 'conv_static_onednn', 'conv_onednn', 'conv_torch', 'torch')
TORCH_LEVERS = ('conv_torch', 'torch')
ONEDNN_FLAGS = {'FLAGS_use_mkldnn': True, 'FLAGS_use_onednn': True}
SUBNET_FEATURES = 64


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--levers', nargs='+', choices=LEVERS, default=None,
                        help='levers to run (default: all; torch rows only with --torch_repo)')
    parser.add_argument('--batch_size', type=int, default=4, help='training batch size')
    parser.add_argument('--gt_size', type=int, default=144, help="training crop (the paper's 144)")
    parser.add_argument('--block_num', type=int, nargs=2, default=[8, 8],
                        help="coupling blocks per stage (the paper's 8 8)")
    parser.add_argument('--repeats', type=int, default=3, help='timed steps per lever (median reported)')
    parser.add_argument('--threads', type=int, default=None,
                        help='math threads of every process (default: all available cores)')
    parser.add_argument('--torch_repo', '--torch-repo', default=None,
                        help='checkout of the official InvDN (or its codes/) for the torch rows')
    parser.add_argument('--json', default=None, help='write the figures to this JSON file')
    parser.add_argument('--run_lever', choices=LEVERS, default=None,
                        help='internal: run one lever in this process and print its JSON')
    args = parser.parse_args(argv)
    if args.gt_size % 4 or args.repeats < 1:
        parser.error(f'--gt_size must be a multiple of 4 and --repeats >= 1, got {args.gt_size}, {args.repeats}')
    return args


# ---------------------------------------------------------------- levers (child process)

def _onednn_conv() -> Callable:
    """The trainer's CPU convolution choice (training.devices.select_cpu_conv, threads as
    configure_cpu set them), which must be the oneDNN operator here; its conv function."""
    from training.devices import select_cpu_conv

    conv3x3, choice = select_cpu_conv('auto')
    if conv3x3 is None:
        raise RuntimeError(choice)
    return conv3x3


def _training_step(args: argparse.Namespace, lever: str) -> Callable[[], float]:
    import paddle

    from benchmarks.bench_cpu import paddle_model, training_data
    from config import load_config
    from training.optim import build_optimizer
    from losses import InvDNLoss

    if lever in ('onednn_flag', 'to_static_onednn'):
        paddle.set_flags(ONEDNN_FLAGS)
    if lever == 'cinn' and not paddle.is_compiled_with_cinn():
        raise RuntimeError('this Paddle build has no CINN (paddle.is_compiled_with_cinn() is False)')
    train_cfg = load_config(None).train
    # onednn_conv: the network built with the operator as its convolution, as the trainer does.
    model = paddle_model(argparse.Namespace(block_num=args.block_num, weights=None),
                         conv3x3=_onednn_conv() if lever == 'onednn_conv' else None)
    model.train()
    optimizer, _ = build_optimizer(train_cfg, model.parameters())
    criterion = InvDNLoss.from_config(train_cfg)
    data_args = argparse.Namespace(train_batch=args.batch_size, gt_size=args.gt_size)
    data = {k: paddle.to_tensor(v) for k, v in training_data(data_args).items()}

    def loss(noisy, lq, gt):
        return criterion(model, noisy, lq, gt)[0]
    if lever in ('to_static', 'to_static_onednn', 'cinn'):
        build = paddle.static.BuildStrategy()
        build.build_cinn_pass = lever == 'cinn'
        loss = paddle.jit.to_static(loss, full_graph=True, build_strategy=build)

    def step() -> float:
        with paddle.amp.auto_cast(enable=lever == 'bf16_autocast', dtype='bfloat16', level='O1'):
            total = loss(data['noisy'], data['lq'], data['gt'])
        total.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(total)
    if lever == 'bf16_autocast':
        # Which dtype a convolution runs in under CPU autocast decides whether the lever acts.
        with paddle.amp.auto_cast(dtype='bfloat16', level='O1'):
            probe = model.operations[1].F.conv1(paddle.zeros([1, 9, 8, 8]))
        step.note = f'a subnet conv under autocast computes in {probe.dtype}'
    return step


def _torch_step(args: argparse.Namespace) -> Callable[[], float]:
    import torch

    from benchmarks.bench_cpu import row_torch_train_step

    torch.manual_seed(0)
    return row_torch_train_step(argparse.Namespace(torch_repo=args.torch_repo, block_num=args.block_num,
                                                   train_batch=args.batch_size, gt_size=args.gt_size))


def _conv(args: argparse.Namespace, lever: str) -> Callable[[], float]:
    """One subnet conv at the training shape: the LR branch runs at GT_size / 4."""
    size, channels = args.gt_size // 4, SUBNET_FEATURES
    x = np.random.default_rng(0).standard_normal((args.batch_size, channels, size, size), dtype=np.float32)
    if lever == 'conv_torch':
        import torch

        conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
        inputs = torch.from_numpy(x).requires_grad_()

        def run() -> float:
            out = conv(inputs).sum()
            out.backward()
            return float(out)
        return run
    import paddle

    if lever == 'conv_onednn':
        conv3x3 = _onednn_conv()
        weight = paddle.create_parameter([channels, channels, 3, 3], 'float32')
        bias = paddle.create_parameter([channels], 'float32')
        inputs = paddle.to_tensor(x, stop_gradient=False)

        def run() -> float:
            out = conv3x3(inputs, weight, bias).sum()
            out.backward()
            return float(out)
        return run
    layout = 'NHWC' if lever == 'conv_nhwc' else 'NCHW'
    conv = paddle.nn.Conv2D(channels, channels, 3, padding=1, data_format=layout)
    inputs = paddle.to_tensor(x.transpose(0, 2, 3, 1) if layout == 'NHWC' else x, stop_gradient=False)

    def total(tensor):
        return conv(tensor).sum()
    if lever == 'conv_static_onednn':
        paddle.set_flags(ONEDNN_FLAGS)
        total = paddle.jit.to_static(total, full_graph=True)

    def run() -> float:
        out = total(inputs)
        out.backward()
        return float(out)
    return run


def run_lever(args: argparse.Namespace) -> Dict[str, object]:
    """Set up one lever, time it and return its figures (called in the child process)."""
    lever = args.run_lever
    configure_cpu(args.threads)
    if args.threads and lever in TORCH_LEVERS:
        import torch

        torch.set_num_threads(args.threads)
    try:
        if lever.startswith('conv_'):
            run = _conv(args, lever)
        elif lever == 'torch':
            run = _torch_step(args)
        else:
            run = _training_step(args, lever)
        losses = [run()]  # warm-up: the static levers build their program here
        wall, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            losses.append(run())
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    except Exception as err:  # a lever Paddle refuses is a result, not a crash of the run
        return {'status': f'fails: {type(err).__name__}: {_first_line(err)}'}
    note = getattr(run, 'note', '')
    return {'status': f'ok; {note}' if note else 'ok', 'wall_s': float(np.median(wall)), 'cpu_s': float(np.median(cpu)),
            'losses': losses}


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = next((line for line in lines if 'Error' in line or 'error' in line), lines[0] if lines else '')
    return text[:160]


# ---------------------------------------------------------------- driver (parent process)

def child(args: argparse.Namespace, lever: str) -> Dict[str, object]:
    command = [sys.executable, '-m', 'benchmarks.train_levers', '--run_lever', lever,
               '--batch_size', str(args.batch_size), '--gt_size', str(args.gt_size),
               '--block_num', *map(str, args.block_num), '--repeats', str(args.repeats)]
    if args.threads:
        command += ['--threads', str(args.threads)]
    if args.torch_repo:
        command += ['--torch_repo', args.torch_repo]
    env = dict(os.environ)
    if args.threads:
        env['MKL_NUM_THREADS'] = str(args.threads)
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    if done.returncode:
        crash = 'segmentation fault' if 'Segmentation fault' in done.stderr else f'exit {done.returncode}'
        return {'status': f'fails: the process died ({crash})'}
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_losses(result: Dict[str, object], baseline: Optional[Dict[str, object]]) -> str:
    if 'losses' not in result or not baseline or 'losses' not in baseline:
        return ''
    ours, ref = np.asarray(result['losses']), np.asarray(baseline['losses'])
    return f'{float(np.max(np.abs(ours - ref) / np.abs(ref))):.1e}'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.run_lever:
        print(json.dumps(run_lever(args)))
        return 0
    levers = args.levers or [lever for lever in LEVERS
                             if args.torch_repo or lever not in TORCH_LEVERS]
    if not args.torch_repo and any(lever in TORCH_LEVERS for lever in levers):
        cli.fail('the torch levers need --torch_repo (a checkout of the official InvDN)')
    results = {}
    for lever in levers:
        results[lever] = child(args, lever)
        print(f'{lever}: {results[lever]["status"]}', file=sys.stderr, flush=True)
    threads = args.threads or available_cpu_cores()
    print(f'batch {args.batch_size} x {args.gt_size}^2, block_num {args.block_num}, '
          f'{threads} thread(s), {args.repeats} timed step(s); conv rows: one 3x3 conv '
          f'{SUBNET_FEATURES}->{SUBNET_FEATURES} at {args.gt_size // 4}^2, forward + backward')
    print(f'{"lever":<18}{"wall s":>9}{"CPU s":>9}{"vs baseline":>13}{"vs torch":>10}'
          f'{"loss rel diff":>15}  status')
    for lever, result in results.items():
        reference = results.get('conv_nchw' if lever.startswith('conv') else 'baseline', {})
        torch_ref = results.get('conv_torch' if lever.startswith('conv') else 'torch', {})
        cells = [f'{result[key]:9.3f}' if key in result else f'{"-":>9}' for key in ('wall_s', 'cpu_s')]
        for ref, width in ((reference, 13), (torch_ref, 10)):
            ratio = f'{result["cpu_s"] / ref["cpu_s"]:.2f}x' if 'cpu_s' in result and 'cpu_s' in ref else '-'
            cells.append(f'{ratio:>{width}}')
        loss_diff = '' if lever.startswith('conv') or lever == 'torch' else \
            compare_losses(result, results.get('baseline'))
        print(f'{lever:<18}{"".join(cells)}{loss_diff:>15}  {result["status"]}')
    print('ratios are of CPU seconds (steadier than wall time on a shared machine)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': {k: v for k, v in vars(args).items() if k != 'run_lever'},
                       'levers': results}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
