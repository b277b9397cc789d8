"""Train the official PyTorch InvDN and this code side by side (reproduction guide 3.11).

    python -m tools.align_training --torch_repo ../InvDN --data_dir ../shared/SIDD_mini \\
        --iters 300 --batch_size 4 --gt_size 96 [--block_num 8 8] [--independent] \\
        [--seed 0 1 2 3] [--jobs 2] --result_dir results/align_training

Both codes start from the same weights (the official model's initialisation for the seed,
converted) and train at the paper's settings except batch, crop and iterations, on
``DATA_DIR/train_mini``; every loss term is recorded every iteration, and the validation PSNR
on ``DATA_DIR/val_mini`` (one seeded z per block, ``scale`` border cropped, as the official
validation) every --val_freq iterations.

Same batches (the default): every iteration both codes get the same crops, flips (this
code's dataset and sampler) and z draws; the official code is also run in float64 as the
noise floor. A run fails when the relative difference of the total loss, Paddle against
torch float32, exceeds 10x the largest float32 floor seen so far (torch float32 against
float64) plus 1e-5: the codes may drift apart no faster than float32 rounding drifts.

--independent: each code with its own data loader and random streams (this code's
sampler, dataset and z; the official LQGTRN dataset, a shuffling torch DataLoader,
``random`` and torch.randn). One run per code says nothing about the run-to-run spread, so
the curves are judged over several seeds (at least 3): each seed gives each code one value
per window of --window iterations (the mean log total loss) and one per validation (the
PSNR), and Welch's t-test compares the two codes' values, window by window and validation by
validation, Bonferroni-corrected at 5 % over all of them. The codes are indistinguishable
when no test rejects: the limit comes from the spread between seeds of the same code.

One seed writes RESULT_DIR/curves.json ({"paddle": {"total": [...], <term>: [...],
"val_psnr": [[iter, psnr], ...]}, "torch": {...}, "settings": {...}}), report.md and
training_alignment.png. Several seeds write each seed's files to RESULT_DIR/seed_<seed>/ and
the judgement to RESULT_DIR/report.md, summary.json and training_alignment.png. A seed whose
folder already holds a complete run with the same settings is reused, so an interrupted
command loses at most the seeds in progress; --jobs runs seeds in parallel processes. Exit
status 1 when the comparison fails.
"""
import argparse
import copy
import json
import os
import random
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from utils.console import quiet_paddle
from utils.durable import atomic_write_bytes

quiet_paddle('--verbose' in sys.argv)  # before Paddle is imported, as apps.cli.prepare_process

import paddle  # noqa: E402

from config import SCHEMA, load_config, paper_default  # noqa: E402
from dataloaders import LQGTRNDataset, folder_pairs  # noqa: E402
from dataloaders.sampler import ResumableBatchSampler  # noqa: E402
from apps import cli  # noqa: E402
from training.devices import select_cpu_conv  # noqa: E402
from training.optim import build_optimizer  # noqa: E402
from training.trainer import LOSS_TERMS  # noqa: E402
from losses import InvDNLoss  # noqa: E402
from networks import build_invnet  # noqa: E402
from tools.align_with_torch import (OfficialObjective, import_official,  # noqa: E402
                                    official_codes_dir)
from tools.convert_torch_weights import convert_state_dict  # noqa: E402
from utils.image_io import quantize  # noqa: E402
from utils.metrics import calculate_psnr  # noqa: E402

TERMS = ('total',) + LOSS_TERMS
DRIFT_FACTOR, DRIFT_FLOOR = 10.0, 1e-5
ALPHA = 0.05  # family-wise level of the independent-stream tests
MIN_SEEDS = 3  # fewer gives no usable estimate of the spread between seeds
JUDGEMENT_FILES = ('report.md', 'summary.json', 'training_alignment.png')
Curves = Dict[str, dict]


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--torch_repo', '--torch-repo', dest='torch_repo', required=True,
                        help='official InvDN checkout (github.com/Yang-Liu1082/InvDN) or its codes/')
    parser.add_argument('--data_dir', required=True, help='a SIDD_mini folder: train_mini/ and val_mini/')
    parser.add_argument('--iters', type=cli.positive_int, default=300, help='training iterations')
    parser.add_argument('--batch_size', '--batch-size', dest='batch_size', type=cli.positive_int,
                        default=4, help='batch size (paper: 14)')
    parser.add_argument('--gt_size', '--gt-size', dest='gt_size', type=cli.positive_int, default=96,
                        help='training crop (paper: 144)')
    parser.add_argument('--block_num', '--block-num', dest='block_num', type=int, nargs=2,
                        default=paper_default('network_G.block_num'), help='coupling blocks per stage')
    parser.add_argument('--val_freq', type=cli.positive_int, default=50, help='validate every N iterations')
    parser.add_argument('--seed', type=int, nargs='+', default=None,
                        help='one run per seed (initialisation, crops, flips and z) '
                             '(default: 0; with --independent 0 1 2 3)')
    cli.add_bool_arg(parser, '--independent', default=False,
                     help=f"each code with its own loader and RNG, judged over >= {MIN_SEEDS} seeds")
    parser.add_argument('--window', type=cli.positive_int, default=50,
                        help='--independent: iterations per window of the loss tests')
    parser.add_argument('--cpu_conv', default=paper_default('train.cpu_conv'), choices=SCHEMA['train']['cpu_conv'].choices,
                        help="this code's convolutions, as the training config's train.cpu_conv: the oneDNN "
                             "custom operator when it builds ('auto') or Paddle's own")
    parser.add_argument('--jobs', type=cli.positive_int, default=1,
                        help='seeds trained at once, each in its own process')
    cli.add_result_args(parser, 'results/align_training', 'folder for curves.json, report.md and the figure')
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = [0, 1, 2, 3] if args.independent else [0]
    if len(set(args.seed)) != len(args.seed):
        parser.error(f'--seed {" ".join(map(str, args.seed))}: each seed once')
    return args


def settings(args: argparse.Namespace, seed: int) -> dict:
    """What makes two runs the same run; kept in curves.json to decide whether one can be reused."""
    return {'data_dir': os.path.realpath(args.data_dir), 'iters': args.iters, 'batch_size': args.batch_size,
            'gt_size': args.gt_size, 'block_num': list(args.block_num), 'val_freq': args.val_freq,
            'independent': args.independent, 'cpu_conv': args.cpu_conv, 'seed': seed}


def train_config(args):
    return load_config(None, ['train.lr_steps=[100000]', f'train.niter={args.iters}']).train


class PaddleRun:
    def __init__(self, state: Dict[str, np.ndarray], args, conv3x3=None):
        self.net = build_invnet(3, 3, args.block_num, 4, conv3x3=conv3x3)
        self.net.set_state_dict(state)
        self.optimizer, self.scheduler = build_optimizer(train_config(args), self.net.parameters())
        self.loss = InvDNLoss()

    def step(self, noisy, lq, gt, z=None) -> Dict[str, float]:
        inputs = [paddle.to_tensor(a) for a in (noisy, lq, gt)]
        total, terms = self.loss(self.net, *inputs, None if z is None else paddle.to_tensor(z))
        total.backward()
        self.optimizer.step()
        self.optimizer.clear_grad()
        self.scheduler.step()
        return {'total': float(total), **{k: float(v) for k, v in terms.items()}}

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        with paddle.no_grad():
            latent = self.net(paddle.to_tensor(noisy))
            return self.net(paddle.concat([latent[:, :3], paddle.to_tensor(z)], axis=1), rev=True)[:, :3].numpy()


class TorchRun:
    def __init__(self, official, net, args, dtype):
        import torch

        self.torch, self.dtype = torch, dtype
        self.net = copy.deepcopy(net).to(dtype)
        cfg = train_config(args)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr_G, betas=(cfg.beta1, cfg.beta2),
                                          weight_decay=cfg.weight_decay_G)
        self.scheduler = official.lr_scheduler.MultiStepLR_Restart(
            self.optimizer, list(cfg.lr_steps), gamma=cfg.lr_gamma)
        self.objective = OfficialObjective(official, dtype)
        self.clip = cfg.gradient_clipping

    def step(self, noisy, lq, gt, z=None) -> Dict[str, float]:
        torch = self.torch
        tensors = [torch.from_numpy(np.asarray(a)).to(self.dtype) for a in (noisy, lq, gt)]
        if z is None:
            z = torch.randn(tensors[1].shape[0], 45, *tensors[1].shape[2:], dtype=self.dtype)
        else:
            z = torch.from_numpy(z).to(self.dtype)
        self.optimizer.zero_grad()
        total, terms = self.objective(self.net, *tensors, z)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
        self.optimizer.step()
        self.scheduler.step()
        return {'total': total.item(), **{k: v.item() for k, v in terms.items()}}

    def restore(self, noisy: np.ndarray, z: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            out = self.net(x=torch.from_numpy(noisy).to(self.dtype))
            y = torch.cat((out[:, :3], torch.from_numpy(z).to(self.dtype)), dim=1)
            return self.net(x=y, rev=True)[:, :3].float().numpy()


def validate(run, blocks: List[tuple], seed: int) -> float:
    """Mean PSNR over the blocks: one seeded z per block, 4 border pixels cropped, uint8."""
    psnrs = []
    for index, (_, noisy, gt) in enumerate(blocks):
        z = np.random.default_rng([seed, 99, index]).standard_normal(
            (1, 45, noisy.shape[0] // 4, noisy.shape[1] // 4), dtype=np.float32)
        out = run.restore(noisy.transpose(2, 0, 1)[None].astype(np.float32), z)[0].transpose(1, 2, 0)
        psnrs.append(calculate_psnr(quantize(out, 8), quantize(gt, 8), crop_border=4))
    return float(np.mean(psnrs))


def our_batches(dataset: LQGTRNDataset, args, seed: int):
    sampler = ResumableBatchSampler(dataset, args.batch_size, args.iters, seed=seed, num_replicas=1, rank=0)
    for ids in sampler:
        samples = [dataset[i] for i in ids]
        yield tuple(np.stack([s[k] for s in samples]) for k in ('Noisy', 'LQ', 'GT'))


def official_batches(data_module, root: str, args):
    import torch

    dataset = data_module.LQGTRN_dataset.LQGTRNDataset({
        'data_type': 'img', 'dataroot_GT': os.path.join(root, 'GT'),
        'dataroot_Noisy': os.path.join(root, 'Noisy'), 'dataroot_LQ': os.path.join(root, 'LQ'),
        'scale': 4, 'GT_size': args.gt_size, 'phase': 'train', 'color': None, 'use_flip': True,
        'use_rot': True})
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)
    produced = 0
    while produced < args.iters:
        for batch in loader:
            if produced == args.iters:
                return
            produced += 1
            yield tuple(batch[k].numpy() for k in ('Noisy', 'LQ', 'GT'))


def draw(curves: Dict[str, dict], path: str, drift: List[float], floor: List[float]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, style in (('paddle', '-'), ('torch', '--')):
        for term, colour in zip(TERMS, ('k', 'tab:blue', 'tab:orange', 'tab:green', 'tab:red')):
            ax_loss.plot(curves[name][term], style, color=colour, lw=0.8,
                         label=f'{name} {term}' if name == 'paddle' or term == 'total' else None)
    # Every run's PSNR, the float64 one included: the spread float rounding alone gives.
    for name, style in (('paddle', '-o'), ('torch', '--o'), ('torch_fp64', ':s')):
        if name in curves and curves[name]['val_psnr']:
            psnr = np.array(curves[name]['val_psnr'])
            ax_psnr.plot(psnr[:, 0], psnr[:, 1], style, label=name.replace('_', ' '))
    ax_loss.set_yscale('log')
    ax_loss.set_xlabel('iteration')
    ax_loss.set_title('loss terms (solid: Paddle, dashed: official PyTorch)')
    ax_loss.legend(fontsize=7, ncol=2)
    if drift:
        twin = ax_loss.twinx()
        twin.plot(drift, color='grey', lw=0.6, label='|Paddle - torch| / torch (total)')
        twin.plot(floor, color='silver', lw=0.6, ls=':', label='float32 floor')
        twin.set_yscale('log')
        twin.legend(fontsize=7, loc='lower left')
    ax_psnr.set_xlabel('iteration')
    ax_psnr.set_ylabel('validation PSNR (dB)')
    ax_psnr.set_title('validation PSNR (val_mini), one z per block')
    ax_psnr.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def drift_check(curves: Curves) -> Tuple[List[float], List[float], List[str]]:
    """Same batches: Paddle's relative drift from torch float32, the float32 floor, failures."""
    paddle_total, torch_total = np.array(curves['paddle']['total']), np.array(curves['torch']['total'])
    fp64 = np.array(curves['torch_fp64']['total'])
    drift = np.abs(paddle_total - torch_total) / np.abs(torch_total)
    floor = np.maximum.accumulate(np.abs(torch_total - fp64) / np.abs(fp64))
    over = np.flatnonzero(~(drift <= DRIFT_FACTOR * floor + DRIFT_FLOOR))
    failed = [f'drift above {DRIFT_FACTOR:g}x floor + {DRIFT_FLOOR:g} from iteration {over[0] + 1}'] if len(over) else []
    return drift.tolist(), floor.tolist(), failed


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch t-test; two constant samples give 1 when equal and 0 when not."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(ttest_ind(a, b, equal_var=False).pvalue)


def welch_detectable(a: Sequence[float], b: Sequence[float], p: float) -> float:
    """The smallest difference of means Welch's test rejects at level p with these spreads:
    what the seeds can resolve, so that a pass is not read as more than it shows."""
    from scipy.stats import t as student

    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return 0.0
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(student.ppf(1 - p / 2, dof) * np.sqrt(va + vb))


def judge_independent(runs: Dict[int, Curves], window: int) -> dict:
    """Welch's t-test between the codes over seeds, per loss window and per validation.

    Each seed gives each code one value per window (mean log total loss) and per validation
    (PSNR): the seeds are the samples, so the limit is the spread between seeds of one code.
    With fewer than MIN_SEEDS seeds the tests are reported but not judged."""
    iters = len(next(iter(runs.values()))['paddle']['total'])
    tests = []
    for start in range(0, iters - window + 1, window):
        values = {code: [float(np.mean(np.log(run[code]['total'][start:start + window]))) for run in runs.values()]
                  for code in ('paddle', 'torch')}
        tests.append({'what': f'log loss, iterations {start + 1}-{start + window}', **values})
    for k, (iteration, _) in enumerate(next(iter(runs.values()))['paddle']['val_psnr']):
        values = {code: [run[code]['val_psnr'][k][1] for run in runs.values()] for code in ('paddle', 'torch')}
        tests.append({'what': f'val PSNR, iteration {iteration}', **values})
    threshold = ALPHA / max(1, len(tests))
    for test in tests:
        test['p'] = welch_p(test['paddle'], test['torch'])
        test['detectable'] = welch_detectable(test['paddle'], test['torch'], threshold)
    judged = len(runs) >= MIN_SEEDS
    failed = [f'{t["what"]}: Welch p {t["p"]:.3g} < {threshold:.2g}' for t in tests if judged and t['p'] < threshold]
    return {'seeds': list(runs), 'threshold': threshold, 'judged': judged, 'tests': tests, 'failed': failed}


def run_report(args: argparse.Namespace, curves: Curves, seed: int, codes: str) -> Tuple[List[str], List[str]]:
    """One seed's report lines and failures (same batches: the drift check)."""
    import torch

    names = [n for n in ('paddle', 'torch', 'torch_fp64') if n in curves]
    done = len(curves['paddle']['total'])
    lines = ['# Training alignment: InvDN-Paddle vs official PyTorch InvDN', '',
             f'Official code {codes}; data {args.data_dir}; {done} of {args.iters} iterations, batch {args.batch_size}, '
             f'GT {args.gt_size}, block_num {list(args.block_num)}, seed {seed}; '
             f'{"independent loaders and RNG" if args.independent else "same batches and z"}; '
             f'paddle {paddle.__version__}, torch {torch.__version__}; run time {curves["seconds"]:.0f} s.',
             f'{curves["convolutions"]}.', '']
    failed = []
    if args.independent:
        lines.append('Independent streams: judged over several seeds (see the judgement of the whole command).')
    else:
        drift, floor, failed = drift_check(curves)
        lines += ['| iteration | Paddle total | torch total | relative diff | float32 floor (max so far) |',
                  '|---|---|---|---|---|']
        for i in sorted({0, 9, 49, 99} | set(range(0, args.iters, max(1, args.iters // 6))) | {done - 1}):
            if i < done:
                lines.append(f'| {i + 1} | {curves["paddle"]["total"][i]:.6g} | {curves["torch"]["total"][i]:.6g} '
                             f'| {drift[i]:.3g} | {floor[i]:.3g} |')
    lines += ['', '| iteration | ' + ' | '.join(f'{n} val PSNR' for n in names) + ' |', '|---|' + '---|' * len(names)]
    for k, (iteration, _) in enumerate(curves['paddle']['val_psnr']):
        lines.append(f'| {iteration} | ' + ' | '.join(f'{curves[n]["val_psnr"][k][1]:.3f}' for n in names) + ' |')
    if failed:
        lines += ['', 'FAILED: ' + '; '.join(failed)]
    return lines, failed


def write_run(args: argparse.Namespace, curves: Curves, seed: int, folder: str, codes: str) -> None:
    """Write one seed's curves.json, report.md and figure for the iterations run so far.

    Called at every validation too, so that a run cut short keeps what it measured."""
    os.makedirs(folder, exist_ok=True)
    atomic_write_bytes(os.path.join(folder, 'curves.json'), json.dumps(curves).encode())
    lines = run_report(args, curves, seed, codes)[0]
    atomic_write_bytes(os.path.join(folder, 'report.md'), ('\n'.join(lines) + '\n').encode())
    drift, floor = drift_check(curves)[:2] if not args.independent else ([], [])
    draw(curves, os.path.join(folder, 'training_alignment.png'), drift, floor)


def train_seed(args: argparse.Namespace, seed: int, folder: str) -> Curves:
    """Train both codes (and torch float64 with the same batches) for one seed; return the curves."""
    import torch

    codes = official_codes_dir(args.torch_repo)
    official = import_official(codes)
    official.lr_scheduler = import_official(codes, 'models', ('lr_scheduler',)).lr_scheduler
    paddle.set_device('cpu')
    started = time.time()
    torch.manual_seed(seed)
    torch_net = official.Inv_arch.InvNet(3, 3, official.Subnet_constructor.subnet('Resnet'), list(args.block_num), 2)
    state = convert_state_dict(torch_net.state_dict(), build_invnet(3, 3, args.block_num, 4), 'official model')
    conv3x3, convolutions = select_cpu_conv(args.cpu_conv)
    print(f'seed {seed}: {convolutions}', flush=True)
    paddle.seed(seed)
    runs = {'paddle': PaddleRun(state, args, conv3x3), 'torch': TorchRun(official, torch_net, args, torch.float32)}
    if not args.independent:
        runs['torch_fp64'] = TorchRun(official, torch_net, args, torch.float64)
    curves = {name: {**{term: [] for term in TERMS}, 'val_psnr': []} for name in runs}
    curves['settings'], curves['convolutions'] = settings(args, seed), convolutions
    train_root = os.path.join(args.data_dir, 'train_mini')
    blocks = list(folder_pairs(os.path.join(args.data_dir, 'val_mini')))
    ours = our_batches(LQGTRNDataset(train_root, 'train', scale=4, GT_size=args.gt_size, seed=seed), args, seed)
    if args.independent:
        # The official dataset crops and flips with `random`; seeded, so that a seed repeats.
        random.seed(seed)
        np.random.seed(seed)
        theirs = official_batches(import_official(codes, 'data', ('LQGTRN_dataset',)), train_root, args)
    for iteration in range(1, args.iters + 1):
        batch = next(ours)
        if args.independent:
            values = {'paddle': runs['paddle'].step(*batch), 'torch': runs['torch'].step(*next(theirs))}
        else:
            z = np.random.default_rng([seed, 7, iteration]).standard_normal(
                (args.batch_size, 45, args.gt_size // 4, args.gt_size // 4), dtype=np.float32)
            values = {name: run.step(*batch, z) for name, run in runs.items()}
        for name, terms in values.items():
            for term in TERMS:
                curves[name][term].append(terms[term])
        if iteration % args.val_freq == 0 or iteration == args.iters:
            for name, run in runs.items():
                curves[name]['val_psnr'].append([iteration, validate(run, blocks, seed)])
            print(f'seed {seed} iter {iteration}: ' + ', '.join(
                f'{n} total {curves[n]["total"][-1]:.5g} psnr {curves[n]["val_psnr"][-1][1]:.3f}' for n in runs),
                flush=True)
            curves['seconds'] = time.time() - started
            write_run(args, curves, seed, folder, codes)
    return curves


def complete_run(args: argparse.Namespace, seed: int, folder: str) -> Optional[Curves]:
    """The curves of a finished run with these settings in `folder`, or None."""
    try:
        with open(os.path.join(folder, 'curves.json')) as f:
            curves = json.load(f)
        done = len(curves['paddle']['total'])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return curves if curves.get('settings') == settings(args, seed) and done == args.iters else None


def judgement_settings(args: argparse.Namespace) -> dict:
    return {**settings(args, None), 'seeds': list(args.seed)}


def seed_folder(args: argparse.Namespace, seed: int) -> str:
    return args.result_dir if len(args.seed) == 1 else os.path.join(args.result_dir, f'seed_{seed}')


def check_folders(args: argparse.Namespace, pending: List[int]) -> None:
    """Refuse to write into a folder holding anything but this command's own results."""
    if args.overwrite:
        return
    for seed in pending:
        folder = seed_folder(args, seed)
        if os.path.isdir(folder) and os.listdir(folder):
            cli.fail(f'{folder} holds results of other settings or an unfinished run; '
                     'pass --overwrite to replace them')
    if len(args.seed) > 1 and os.path.isdir(args.result_dir):
        names = os.listdir(args.result_dir)
        others = sorted(n for n in names if n not in JUDGEMENT_FILES and not n.startswith('seed_'))
        if others:
            cli.fail(f'--result_dir {args.result_dir} holds {", ".join(others)}; '
                     'use another folder or pass --overwrite')
        try:
            with open(os.path.join(args.result_dir, 'summary.json')) as f:
                earlier = json.load(f)['settings']
        except (OSError, ValueError, KeyError):
            earlier = None
        if earlier is not None and {**earlier, 'seeds': None} != {**judgement_settings(args), 'seeds': None}:
            cli.fail(f'{args.result_dir}/summary.json judges runs of other settings; '
                     'use another folder or pass --overwrite')


def child_argv(args: argparse.Namespace, seed: int) -> List[str]:
    """The command that trains one seed of this command in its own process."""
    argv = [sys.executable, '-m', 'tools.align_training', '--torch_repo', args.torch_repo,
            '--data_dir', args.data_dir, '--iters', str(args.iters), '--batch_size', str(args.batch_size),
            '--gt_size', str(args.gt_size), '--block_num', *map(str, args.block_num),
            '--val_freq', str(args.val_freq), '--seed', str(seed), '--independent', str(args.independent),
            '--window', str(args.window), '--cpu_conv', args.cpu_conv, '--result_dir', seed_folder(args, seed),
            '--overwrite', str(args.overwrite)]
    return argv


def run_in_processes(args: argparse.Namespace, pending: List[int]) -> None:
    """Train the pending seeds, --jobs at a time, each logging to RESULT_DIR/seed_<seed>.log."""
    env = dict(os.environ)
    # One process per core share: more math threads than cores only makes them wait.
    threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
    for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        env.setdefault(name, threads)
    os.makedirs(args.result_dir, exist_ok=True)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    queue, running, errors = list(pending), {}, []
    while queue or running:
        while queue and len(running) < args.jobs:
            seed = queue.pop(0)
            log = open(os.path.join(args.result_dir, f'seed_{seed}.log'), 'a')
            print(f'seed {seed}: training in a process of its own, log {log.name}', flush=True)
            running[seed] = (subprocess.Popen(child_argv(args, seed), cwd=root, env=env, stdout=log,
                                              stderr=subprocess.STDOUT), log)
        for seed, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[seed]
                # Status 1 with a complete run is a failed drift check, judged below.
                if complete_run(args, seed, seed_folder(args, seed)) is None:
                    errors.append(f'seed {seed} (exit status {process.returncode}; see {log.name})')
        time.sleep(1)
    if errors:
        cli.fail('these runs did not finish: ' + ', '.join(errors))


def judgement_report(args: argparse.Namespace, runs: Dict[int, Curves]) -> Tuple[List[str], dict]:
    """The report of several seeds: each seed's drift check, or the independent-stream tests."""
    lines = ['# Training alignment over seeds: InvDN-Paddle vs official PyTorch InvDN', '',
             f'Data {args.data_dir}; {args.iters} iterations, batch {args.batch_size}, GT {args.gt_size}, '
             f'block_num {list(args.block_num)}, cpu_conv {args.cpu_conv}; seeds {" ".join(map(str, runs))}; '
             f'{"independent loaders and RNG" if args.independent else "same batches and z"}; '
             'each seed in seed_<seed>/.', '']
    if args.independent:
        summary = judge_independent(runs, args.window)
        lines += [f'Welch t-test per window and validation, the seeds as samples; pass when every p >= '
                  f'{summary["threshold"]:.2g} ({ALPHA:g} / {len(summary["tests"])} tests).', '',
                  'The last column is the smallest difference the test would flag with these spreads.', '',
                  '| test | Paddle mean (sd) | official mean (sd) | difference | p | detectable difference |',
                  '|---|---|---|---|---|---|']
        for t in summary['tests']:
            p_mean, t_mean = np.mean(t['paddle']), np.mean(t['torch'])
            lines.append(f'| {t["what"]} | {p_mean:.4g} ({np.std(t["paddle"], ddof=1):.2g}) '
                         f'| {t_mean:.4g} ({np.std(t["torch"], ddof=1):.2g}) | {p_mean - t_mean:+.3g} | {t["p"]:.3g} | {t["detectable"]:.3g} |')
        if not summary['judged']:
            lines += ['', f'NOT JUDGED: {len(runs)} seed(s); the test needs at least {MIN_SEEDS}.']
    else:
        summary = {'seeds': list(runs), 'failed': []}
        lines += ['| seed | largest drift / limit | final val PSNR Paddle / official fp32 / fp64 |', '|---|---|---|']
        for seed, curves in runs.items():
            drift, floor, failed = drift_check(curves)
            ratio = max(d / (DRIFT_FACTOR * f + DRIFT_FLOOR) for d, f in zip(drift, floor))
            psnr = ' / '.join(f'{curves[n]["val_psnr"][-1][1]:.2f}' for n in ('paddle', 'torch', 'torch_fp64'))
            lines.append(f'| {seed} | {ratio:.3g} | {psnr} |')
            summary['failed'] += [f'seed {seed}: {f}' for f in failed]
    if summary['failed']:
        lines += ['', 'FAILED: ' + '; '.join(summary['failed'])]
    return lines, summary


def draw_seeds(runs: Dict[int, Curves], path: str) -> None:
    """Every seed's total loss and validation PSNR, with the mean over seeds, for both codes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, colour in (('paddle', 'tab:blue'), ('torch', 'tab:orange')):
        totals = np.array([run[name]['total'] for run in runs.values()])
        for total in totals:
            ax_loss.plot(np.arange(1, totals.shape[1] + 1), total, color=colour, lw=0.4, alpha=0.35)
        ax_loss.plot(np.arange(1, totals.shape[1] + 1), np.exp(np.log(totals).mean(0)), color=colour, lw=1.2,
                     label=f'{name}: geometric mean over {len(runs)} seeds')
        psnr = np.array([run[name]['val_psnr'] for run in runs.values()])
        for k, seed_psnr in enumerate(psnr):
            ax_psnr.plot(seed_psnr[:, 0], seed_psnr[:, 1], 'o', color=colour, ms=3, alpha=0.5,
                         label=f'{name}: each seed' if k == 0 else None)
        ax_psnr.plot(psnr[0, :, 0], psnr[:, :, 1].mean(0), '-', color=colour, label=f'{name}: mean')
    ax_loss.set_yscale('log')
    ax_loss.set_xlabel('iteration')
    ax_loss.set_title('total loss, independent loaders and RNG (thin: each seed)')
    ax_loss.legend(fontsize=8)
    ax_psnr.set_xlabel('iteration')
    ax_psnr.set_ylabel('validation PSNR (dB)')
    ax_psnr.set_title('validation PSNR (val_mini), one z per block')
    ax_psnr.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    finished = {seed: complete_run(args, seed, seed_folder(args, seed)) for seed in args.seed}
    pending = [seed for seed, curves in finished.items() if curves is None]
    for seed in [s for s in args.seed if s not in pending]:
        print(f'seed {seed}: reusing the finished run in {seed_folder(args, seed)}', flush=True)
    check_folders(args, pending)
    if args.jobs > 1 and len(pending) > 1:
        run_in_processes(args, pending)
    else:
        for seed in pending:
            train_seed(args, seed, seed_folder(args, seed))
    runs = {seed: complete_run(args, seed, seed_folder(args, seed)) for seed in args.seed}
    if len(args.seed) == 1:
        lines, failed = run_report(args, runs[args.seed[0]], args.seed[0], official_codes_dir(args.torch_repo))
        print('\n'.join(lines))
        if args.independent:
            print(f'independent streams: one seed is not judged; give --seed with >= {MIN_SEEDS} seeds')
        return 1 if failed else 0
    lines, summary = judgement_report(args, runs)
    atomic_write_bytes(os.path.join(args.result_dir, 'summary.json'),
                       json.dumps({'settings': judgement_settings(args), **summary}).encode())
    atomic_write_bytes(os.path.join(args.result_dir, 'report.md'), ('\n'.join(lines) + '\n').encode())
    draw_seeds(runs, os.path.join(args.result_dir, 'training_alignment.png'))
    print('\n'.join(lines))
    return 1 if summary['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
