"""Mixed-precision training (train.amp) against float32, from the same start.

    python -m benchmarks.bench_amp --data_dir ../shared/SIDD_mini/train_mini

Each variant (off = float32, then the --levels given) builds the trainer with the same seed,
hence the same initial weights, the same batches and the same z draws, and runs --iters
optimisation steps of the paper's model (batch 4, GT crop 144 by default). Printed: the total
loss every --every iterations for each variant, its relative gap to float32, and the median
step time (the first --warmup steps left out). Mixed precision is float16 with loss scaling
on a GPU; on a CPU the trainer refuses it (Paddle has no bf16 training there) and this
script prints that reason for each level.
"""
import os
import statistics
import tempfile
import time

from apps import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    parser.add_argument('--data_dir', required=True,
                        help='a training folder with GT/ and Noisy/ (and LQ/), e.g. SIDD_mini/train_mini')
    parser.add_argument('--levels', nargs='+', default=['O1', 'O2'], choices=('O1', 'O2'),
                        help='train.amp levels compared with float32')
    parser.add_argument('--iters', type=cli.positive_int, default=50, help='steps per variant')
    parser.add_argument('--every', type=cli.positive_int, default=5, help='print the loss every N steps')
    parser.add_argument('--warmup', type=int, default=3, help='first steps left out of the timing')
    parser.add_argument('--batch_size', type=cli.positive_int, default=4, help='training batch')
    parser.add_argument('--gt_size', type=cli.positive_int, default=144, help='training crop (paper 144)')
    parser.add_argument('--block_num', type=int, nargs='+', default=[8, 8],
                        help="coupling blocks per stage (paper's: 8 8)")
    parser.add_argument('--device', choices=('cpu', 'gpu'), default='gpu', help='where to train')
    return parser.parse_args(argv)


def run_variant(args, level: str, workdir: str) -> tuple:
    """(total loss per step, step times in s) of ``args.iters`` steps at ``train.amp=level``."""
    import paddle

    from config import load_config
    from training.trainer import Trainer

    cfg = load_config(None, [
        f'device={args.device}', f'name=amp_{level}', f'path.experiments_root={workdir}',
        f'datasets.train.dataroot={args.data_dir}', f'datasets.val.dataroot={args.data_dir}',
        f'network_G.block_num={list(args.block_num)}', f'datasets.train.GT_size={args.gt_size}',
        f'datasets.train.batch_size={args.batch_size}', 'datasets.train.n_workers=0',
        f'train.niter={args.iters}', f'train.amp={level}'])
    with paddle.utils.unique_name.guard():
        trainer = Trainer(cfg)
        try:
            losses, times = [], []
            for batch in trainer.loader:
                start = time.perf_counter()
                losses.append(float(trainer.step(batch)[0]))  # float(): waits for the step
                times.append(time.perf_counter() - start)
        finally:
            trainer.close()
    return losses, times


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    import paddle

    print(f'paper model {args.block_num}, batch {args.batch_size}, GT {args.gt_size}, '
          f'{args.iters} steps, device {args.device}, bf16 CPU support: '
          f'{paddle.base.core.supports_bfloat16()}')
    from training.errors import TrainingError

    results = {}
    with tempfile.TemporaryDirectory(prefix='bench_amp_') as workdir:
        for level in ['off'] + list(args.levels):
            try:
                results[level] = run_variant(args, level, os.path.join(workdir, level))
            except TrainingError as err:
                if level == 'off':
                    cli.fail(err)
                print(f'{level}: not run: {err}')
                continue
            losses, times = results[level]
            print(f'{level}: median step {statistics.median(times[args.warmup:]):.3f} s')
    reference = results['off'][0]
    print('iter  ' + '  '.join(f'{level:>18}' for level in results))
    for i in sorted(set(range(0, args.iters, args.every)) | {args.iters - 1}):
        cells = []
        for level, (losses, _) in results.items():
            gap = '' if level == 'off' else f' ({100 * (losses[i] - reference[i]) / abs(reference[i]):+.1f}%)'
            cells.append(f'{losses[i]:10.2f}{gap}'.rjust(18))
        print(f'{i + 1:4d}  ' + '  '.join(cells))
    base = statistics.median(results['off'][1][args.warmup:])
    for level, (losses, times) in results.items():
        step = statistics.median(times[args.warmup:])
        mean_last = sum(losses[-10:]) / len(losses[-10:])
        print(f'{level}: median step {step:.3f} s ({base / step:.2f}x float32), mean loss of the last '
              f'10 steps {mean_last:.2f}')


if __name__ == '__main__':
    main()
