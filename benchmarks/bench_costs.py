"""The CPU-side costs that docs/training.md (training on GPUs) and docs/deployment.md quote.

    python -m benchmarks.bench_costs --data_dir ../shared/SIDD_mini

- a training sample read with LQ/ and with LQ computed on the fly (``train_mini``, GT crop 144);
- the optimiser step with clipping on the paper's model: per-parameter and multi-tensor Adam;
- the NumPy z draw for 16 Monte-Carlo samples of a 256 x 256 block;
- the set-up of the Paddle Inference back end (export, checks, predictor) for the paper's model.
Each figure is the median of --repeats runs (milliseconds, seconds for the set-up).
"""
import os
import shutil
import statistics
import tempfile
import time
from typing import Callable

import numpy as np

from apps import cli


def median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    parser.add_argument('--data_dir', required=True, help='a SIDD_mini folder (train_mini/ with LQ/)')
    parser.add_argument('--repeats', type=cli.positive_int, default=20, help='timed runs per figure')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    import paddle

    from config import load_config
    from dataloaders import LQGTRNDataset
    from training.optim import build_optimizer
    from networks import InvNetOneForward, build_invnet

    train_root = os.path.join(args.data_dir, 'train_mini')
    with tempfile.TemporaryDirectory(prefix='bench_costs_') as workdir:
        for sub in ('GT', 'Noisy'):
            shutil.copytree(os.path.join(train_root, sub), os.path.join(workdir, sub))
        for label, root in (('with LQ/', train_root), ('LQ on the fly', workdir)):
            dataset = LQGTRNDataset(root, 'train', scale=4, GT_size=144)
            counter = iter(range(10 ** 6))
            dataset[0]
            print(f'training sample, {label}: {median_ms(lambda: dataset[next(counter)], args.repeats):.1f} ms')

    cfg = load_config(None).train
    for multi_tensor in (False, True):
        with paddle.utils.unique_name.guard():
            paddle.seed(0)
            net = build_invnet()
            optimizer, _ = build_optimizer(cfg, net.parameters(), multi_tensor)
            (net(paddle.rand([1, 3, 16, 16])) ** 2).sum().backward()
            optimizer.step()  # the first step creates the moments
            print(f'optimiser step with clipping, {"multi-tensor" if multi_tensor else "per-parameter"} '
                  f'Adam: {median_ms(optimizer.step, args.repeats):.1f} ms')

    rng = np.random.default_rng(0)
    z_ms = median_ms(lambda: rng.standard_normal((16, 45, 64, 64), dtype=np.float32), args.repeats)
    print(f'z for 16 samples of a 256 x 256 block (NumPy): {z_ms:.1f} ms')

    from deploy.export import export_program
    from deploy.runtimes import open_runtime

    model = InvNetOneForward()
    model.eval()
    with tempfile.TemporaryDirectory(prefix='bench_costs_export_') as model_dir:
        start = time.perf_counter()
        export_program(model, model_dir)
        exported = time.perf_counter()
        open_runtime('paddle-inference', model_dir)
        print(f'export and verification (paper model): {exported - start:.1f} s; Paddle Inference '
              f'opened from the folder: {time.perf_counter() - exported:.1f} s')


if __name__ == '__main__':
    main()
