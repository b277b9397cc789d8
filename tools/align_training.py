"""Train the official PyTorch InvDN and this code side by side (reproduction guide 3.11).

    python -m tools.align_training --torch_repo ../InvDN --data_dir ../shared/SIDD_mini \\
        --iters 300 --batch_size 4 --gt_size 96 [--block_num 8 8] [--independent] \\
        --result_dir results/align_training

Both codes start from the same weights (the official model's initialisation, converted) and
train at the paper's settings except batch, crop and iterations, on ``DATA_DIR/train_mini``;
every loss term is recorded every iteration, and the validation PSNR on
``DATA_DIR/val_mini`` (one seeded z per block, ``scale`` border cropped, as the official
validation) every --val_freq iterations.

Same batches (the default): every iteration both codes get the same crops, flips (this
code's dataset and sampler) and z draws; the official code is also run in float64 as the
noise floor. The run fails when the relative difference of the total loss, Paddle against
torch float32, exceeds 10x the largest float32 floor seen so far (torch float32 against
float64) plus 1e-5: the codes may drift apart no faster than float32 rounding drifts.

--independent: each code with its own data loader and random streams (this code's
sampler, dataset and z; the official LQGTRN dataset, a shuffling torch DataLoader and
torch.randn). The curves are judged statistically indistinguishable when, in every window of
--window iterations, Welch's t-test on the log total losses of the two codes gives p >= 1%
divided by the number of windows (Bonferroni), and the final validation PSNRs differ by less
than --psnr_tolerance dB.

Writes RESULT_DIR/curves.json ({"paddle": {"total": [...], <term>: [...], "val_psnr":
[[iter, psnr], ...]}, "torch": {...}, ...}), report.md and training_alignment.png; exit
status 1 when the comparison fails.
"""
import argparse
import copy
import json
import os
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from utils.console import quiet_paddle
from utils.durable import atomic_write_bytes

quiet_paddle('--verbose' in sys.argv)  # before Paddle is imported, as engine.cli.prepare_process

import paddle  # noqa: E402

from config import load_config, paper_default  # noqa: E402
from dataloaders import LQGTRNDataset, folder_pairs  # noqa: E402
from dataloaders.sampler import ResumableBatchSampler  # noqa: E402
from engine import cli  # noqa: E402
from engine.trainer import LOSS_TERMS, build_optimizer  # noqa: E402
from losses import InvDNLoss  # noqa: E402
from networks import build_invnet  # noqa: E402
from tools.align_with_torch import (OfficialObjective, import_official,  # noqa: E402
                                    official_codes_dir)
from tools.convert_torch_weights import convert_state_dict  # noqa: E402
from utils.image_io import quantize  # noqa: E402
from utils.metrics import calculate_psnr  # noqa: E402

TERMS = ('total',) + LOSS_TERMS
DRIFT_FACTOR, DRIFT_FLOOR = 10.0, 1e-5
ALPHA = 0.01


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
    parser.add_argument('--seed', type=int, default=0, help='initialisation, crops, flips and z')
    cli.add_bool_arg(parser, '--independent', default=False,
                     help="each code with its own loader and RNG, judged statistically")
    parser.add_argument('--window', type=cli.positive_int, default=50,
                        help='--independent: iterations per window of the t-tests')
    parser.add_argument('--psnr_tolerance', type=float, default=1.0,
                        help='--independent: largest final validation PSNR difference (dB)')
    cli.add_result_args(parser, 'results/align_training', 'folder for curves.json, report.md and the figure')
    return parser.parse_args(argv)


def train_config(args):
    return load_config(None, ['train.lr_steps=[100000]', f'train.niter={args.iters}']).train


class PaddleRun:
    def __init__(self, state: Dict[str, np.ndarray], args):
        self.net = build_invnet(3, 3, args.block_num, 4)
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


def our_batches(dataset: LQGTRNDataset, args):
    sampler = ResumableBatchSampler(dataset, args.batch_size, args.iters, seed=args.seed, num_replicas=1, rank=0)
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


def welch_windows(a: List[float], b: List[float], window: int) -> List[float]:
    from scipy.stats import ttest_ind

    return [float(ttest_ind(np.log(a[s:s + window]), np.log(b[s:s + window]), equal_var=False).pvalue)
            for s in range(0, len(a) - window + 1, window)]


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


def write_results(args: argparse.Namespace, curves: Dict[str, Dict[str, list]], runs: List[str],
                  codes: str, started: float) -> Tuple[List[str], List[str]]:
    """Write curves.json, report.md and the figure for the iterations run so far.

    Called at every validation too, so that a run cut short keeps what it measured."""
    import torch

    done = len(curves['paddle']['total'])
    os.makedirs(args.result_dir, exist_ok=True)
    atomic_write_bytes(os.path.join(args.result_dir, 'curves.json'), json.dumps(curves).encode())
    paddle_total, torch_total = np.array(curves['paddle']['total']), np.array(curves['torch']['total'])
    lines = ['# Training alignment: InvDN-Paddle vs official PyTorch InvDN', '',
             f'Official code {codes}; data {args.data_dir}; {done} of {args.iters} iterations, batch {args.batch_size}, '
             f'GT {args.gt_size}, block_num {list(args.block_num)}, seed {args.seed}; '
             f'{"independent loaders and RNG" if args.independent else "same batches and z"}; '
             f'paddle {paddle.__version__}, torch {torch.__version__}; run time {time.time() - started:.0f} s.', '']
    failed, drift, floor = [], [], []
    if not args.independent:
        fp64 = np.array(curves['torch_fp64']['total'])
        drift = (np.abs(paddle_total - torch_total) / np.abs(torch_total)).tolist()
        floor = np.maximum.accumulate(np.abs(torch_total - fp64) / np.abs(fp64)).tolist()
        limit = DRIFT_FACTOR * np.array(floor) + DRIFT_FLOOR
        over = [i + 1 for i, (d, lim) in enumerate(zip(drift, limit)) if not d <= lim]
        if over:
            failed.append(f'drift above {DRIFT_FACTOR:g}x floor + {DRIFT_FLOOR:g} from iteration {over[0]}')
        lines += ['| iteration | Paddle total | torch total | relative diff | float32 floor (max so far) |',
                  '|---|---|---|---|---|']
        for i in sorted({0, 9, 49, 99} | set(range(0, args.iters, max(1, args.iters // 6))) | {done - 1}):
            if i < done:
                lines.append(f'| {i + 1} | {paddle_total[i]:.6g} | {torch_total[i]:.6g} | {drift[i]:.3g} | {floor[i]:.3g} |')
    else:
        pvalues = welch_windows(curves['paddle']['total'], curves['torch']['total'], args.window)
        threshold = ALPHA / max(1, len(pvalues))
        if pvalues and min(pvalues) < threshold:
            failed.append(f'window {int(np.argmin(pvalues)) + 1}: Welch p {min(pvalues):.3g} < {threshold:.2g}')
        gap = abs(curves['paddle']['val_psnr'][-1][1] - curves['torch']['val_psnr'][-1][1])
        if gap > args.psnr_tolerance:
            failed.append(f'final validation PSNR differs by {gap:.2f} dB > {args.psnr_tolerance}')
        lines += [f'Welch t-test per window of {args.window} iterations (log total loss): p = '
                  + ', '.join(f'{p:.3g}' for p in pvalues) + f'; pass when every p >= {threshold:.2g}.']
    lines += ['', '| iteration | ' + ' | '.join(f'{n} val PSNR' for n in runs) + ' |',
              '|---|' + '---|' * len(runs)]
    for k, (iteration, _) in enumerate(curves['paddle']['val_psnr']):
        lines.append(f'| {iteration} | ' + ' | '.join(f'{curves[n]["val_psnr"][k][1]:.3f}' for n in runs) + ' |')
    if failed:
        lines += ['', 'FAILED: ' + '; '.join(failed)]
    atomic_write_bytes(os.path.join(args.result_dir, 'report.md'), ('\n'.join(lines) + '\n').encode())
    draw(curves, os.path.join(args.result_dir, 'training_alignment.png'), drift, floor)
    return lines, failed


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    if os.path.isdir(args.result_dir) and os.listdir(args.result_dir) and not args.overwrite:
        cli.fail(f'--result_dir {args.result_dir} is not empty; pass --overwrite to write into it')
    import torch

    codes = official_codes_dir(args.torch_repo)
    official = import_official(codes)
    official.lr_scheduler = import_official(codes, 'models', ('lr_scheduler',)).lr_scheduler
    paddle.set_device('cpu')
    started = time.time()
    torch.manual_seed(args.seed)
    torch_net = official.Inv_arch.InvNet(3, 3, official.Subnet_constructor.subnet('Resnet'), list(args.block_num), 2)
    state = convert_state_dict(torch_net.state_dict(), build_invnet(3, 3, args.block_num, 4), 'official model')
    paddle.seed(args.seed)
    runs = {'paddle': PaddleRun(state, args), 'torch': TorchRun(official, torch_net, args, torch.float32)}
    if not args.independent:
        runs['torch_fp64'] = TorchRun(official, torch_net, args, torch.float64)
    curves = {name: {**{term: [] for term in TERMS}, 'val_psnr': []} for name in runs}
    train_root = os.path.join(args.data_dir, 'train_mini')
    blocks = list(folder_pairs(os.path.join(args.data_dir, 'val_mini')))
    ours = our_batches(LQGTRNDataset(train_root, 'train', scale=4, GT_size=args.gt_size, seed=args.seed), args)
    if args.independent:
        data = import_official(codes, 'data', ('LQGTRN_dataset',))
        theirs = official_batches(data, train_root, args)
    for iteration in range(1, args.iters + 1):
        batch = next(ours)
        if args.independent:
            values = {'paddle': runs['paddle'].step(*batch), 'torch': runs['torch'].step(*next(theirs))}
        else:
            z = np.random.default_rng([args.seed, 7, iteration]).standard_normal(
                (args.batch_size, 45, args.gt_size // 4, args.gt_size // 4), dtype=np.float32)
            values = {name: run.step(*batch, z) for name, run in runs.items()}
        for name, terms in values.items():
            for term in TERMS:
                curves[name][term].append(terms[term])
        if iteration % args.val_freq == 0 or iteration == args.iters:
            for name, run in runs.items():
                curves[name]['val_psnr'].append([iteration, validate(run, blocks, args.seed)])
            print(f'iter {iteration}: ' + ', '.join(f'{n} total {curves[n]["total"][-1]:.5g} psnr '
                                                    f'{curves[n]["val_psnr"][-1][1]:.3f}' for n in runs),
                  flush=True)
            write_results(args, curves, list(runs), codes, started)

    lines, failed = write_results(args, curves, list(runs), codes, started)
    print('\n'.join(lines))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
