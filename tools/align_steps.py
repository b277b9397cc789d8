"""The reproduction guide's remaining alignment steps against the official PyTorch InvDN:
data reading, metrics, learning-rate schedule and initialisation (reprod_log).

    python -m tools.align_steps --torch_repo /path/to/InvDN --data_dir ../shared/SIDD_mini \\
        --result_dir results/align_steps

Steps (PaddlePaddle/models, docs/lwfx/ArticleReproduction_CV.md):
- data_train, data_train_no_lq (guide 3.9): the official ``LQGTRN_dataset`` and ours on
  ``DATA_DIR/train_mini`` (with its LQ/ folder, and a copy without it, where LQ is computed),
  driven with the same crop positions and flips: ours are drawn, then injected into the
  official code's ``random`` calls, so two random generators need not agree. GT, Noisy and LQ
  of every sample are compared.
- data_val (3.2): the official dataset in its validation phase (whole images, modcrop) and ours
  on ``DATA_DIR/val_mini``; data_mat: SIDD blocks from a .mat file, read as the official
  ``test_Real.py`` reads them (scipy + ``read_img_array``) and as ours does.
- metrics (3.3): the official ``util.calculate_psnr``/``calculate_ssim`` and ours on the same
  uint8 pairs, and our float path (clip, quantise) against the official ``tensor2img_Real``.
- lr_schedule (3.6): the official ``MultiStepLR_Restart`` as ``train_InvDN.yml`` configures it
  and ours (``training.optim.build_optimizer``), the lr of every iteration that changes it and
  of 2,000 more spread over the run, for the one-card (600k) and the four-card (150k) schedule.
- init (3.10): a freshly initialised model of each code (no weights copied): per tensor mean,
  standard deviation and bounds, and a two-sample Kolmogorov-Smirnov test per tensor
  (Bonferroni-corrected at 1 % over all tensors).
Writes reprod_log files and report.md into --result_dir; exit status 1 when a step fails.
"""
import argparse
import contextlib
import importlib.util
import os
import random
import shutil
import sys
import tempfile
import types
import warnings
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from utils.console import quiet_paddle

quiet_paddle('--verbose' in sys.argv)  # before Paddle is imported, as apps.cli.prepare_process

import paddle  # noqa: E402

from config import load_config, paper_default  # noqa: E402
from dataloaders import LQGTRNDataset, load_blocks  # noqa: E402
from apps import cli  # noqa: E402
from training.optim import build_optimizer  # noqa: E402
from networks import build_invnet  # noqa: E402
from tools.align_with_torch import import_official, official_codes_dir, save_logger  # noqa: E402
from utils.image_io import quantize  # noqa: E402
from utils.metrics import calculate_psnr, calculate_ssim  # noqa: E402

KS_ALPHA = 0.01  # family-wise, Bonferroni-corrected over the tensors


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--torch_repo', '--torch-repo', dest='torch_repo', required=True,
                        help='official InvDN checkout (github.com/Yang-Liu1082/InvDN) or its codes/')
    parser.add_argument('--data_dir', required=True,
                        help='a SIDD_mini folder: train_mini/{GT,Noisy,LQ} and val_mini/{GT,Noisy}')
    parser.add_argument('--samples', type=cli.positive_int, default=24,
                        help='training samples compared (indices run over two epochs)')
    parser.add_argument('--gt_size', type=cli.positive_int, default=paper_default('datasets.train.GT_size'),
                        help='training crop size')
    parser.add_argument('--seed', type=int, default=0, help='seed of the crops, flips and models')
    cli.add_result_args(parser, 'results/align_steps', 'folder for the reprod_log files and report.md')
    return parser.parse_args(argv)


@contextlib.contextmanager
def torchvision_stand_in() -> Iterator[None]:
    """The official utils/util.py imports torchvision's ``make_grid``, used only to tile image
    grids, never by the functions compared here; where torchvision is not installed (it has no
    CPU build on PyPI) a stand-in module lets the official file import."""
    if importlib.util.find_spec('torchvision') is not None:
        yield
        return
    package, submodule = types.ModuleType('torchvision'), types.ModuleType('torchvision.utils')
    submodule.make_grid = None
    package.utils = submodule
    sys.modules.update({'torchvision': package, 'torchvision.utils': submodule})
    try:
        yield
    finally:
        del sys.modules['torchvision'], sys.modules['torchvision.utils']


class InjectedDraws:
    """Makes the official dataset's ``random`` calls return our dataset's draws for a sample:
    ``randint`` the crop position, ``random`` the three flips (a value < 0.5 means flip),
    ``choice`` the scale 1 of its on-the-fly LQ path."""

    def __init__(self, ours: LQGTRNDataset, index: int, height: int, width: int):
        rng = np.random.default_rng([ours.seed, index])
        lq_size = ours.GT_size // ours.scale
        self.crop = [int(rng.integers(0, height // ours.scale - lq_size + 1)),
                     int(rng.integers(0, width // ours.scale - lq_size + 1))]
        self.flips = [0.0 if flip else 0.9 for flip in rng.random(3) < 0.5]
        self.saved = (random.randint, random.random, random.choice)

    def __enter__(self) -> None:
        crop, flips = iter(self.crop), iter(self.flips)
        random.randint = lambda a, b: next(crop)
        random.random = lambda: next(flips)
        random.choice = lambda options: options[0]

    def __exit__(self, *exc) -> None:
        random.randint, random.random, random.choice = self.saved


def official_dataset(official, root: str, phase: str, gt_size: int, with_lq: bool):
    return official.LQGTRN_dataset.LQGTRNDataset({
        'data_type': 'img', 'dataroot_GT': os.path.join(root, 'GT'),
        'dataroot_Noisy': os.path.join(root, 'Noisy'),
        'dataroot_LQ': os.path.join(root, 'LQ') if with_lq else None, 'scale': 4,
        'GT_size': gt_size, 'phase': phase, 'color': None, 'use_flip': True, 'use_rot': True})


def compare_training_data(official, root: str, args, with_lq: bool) -> Tuple[dict, dict]:
    ours = LQGTRNDataset(root, 'train', scale=4, GT_size=args.gt_size, seed=args.seed)
    theirs = official_dataset(official, root, 'train', args.gt_size, with_lq)
    mine, reference = {}, {}
    for index in range(args.samples):
        file_index = index % len(ours)
        height, width = _full_size(ours, file_index)
        with InjectedDraws(ours, index, height, width):
            expected = theirs[file_index]
        got = ours[index]
        for key in ('GT', 'Noisy', 'LQ'):
            mine[f'{key}_{index}'] = got[key]
            reference[f'{key}_{index}'] = expected[key].numpy()
    return mine, reference


def _full_size(dataset: LQGTRNDataset, file_index: int) -> Tuple[int, int]:
    from utils.image_io import read_image

    return read_image(os.path.join(dataset.gt_dir, dataset.names[file_index])).shape[:2]


def compare_validation_data(official, root: str) -> Tuple[dict, dict]:
    ours = LQGTRNDataset(root, 'val', scale=4)
    theirs = official_dataset(official, root, 'val', 0, with_lq=False)
    mine, reference = {}, {}
    for index in range(len(ours)):
        got, expected = ours[index], theirs[index]
        for key in ('GT', 'Noisy'):
            mine[f'{key}_{index}'] = got[key]
            reference[f'{key}_{index}'] = expected[key].numpy()
    return mine, reference


def compare_mat_blocks(official_util, workdir: str, seed: int) -> Tuple[dict, dict]:
    import scipy.io

    blocks = np.random.default_rng(seed).integers(0, 256, (2, 3, 16, 16, 3)).astype(np.uint8)
    path = os.path.join(workdir, 'BenchmarkNoisyBlocksSrgb.mat')
    scipy.io.savemat(path, {'BenchmarkNoisyBlocksSrgb': blocks})
    ours = load_blocks(path, 'BenchmarkNoisyBlocksSrgb').astype(np.float32) / 255.0
    loaded = scipy.io.loadmat(path)['BenchmarkNoisyBlocksSrgb']
    mine = {f'image_{i}': ours[i] for i in range(len(ours))}
    reference = {f'image_{i}': official_util.read_img_array(loaded[i]) for i in range(len(loaded))}
    return mine, reference


def compare_metrics(official_util, root: str, seed: int) -> Tuple[dict, dict]:
    import torch

    from dataloaders import folder_pairs

    rng = np.random.default_rng(seed)
    mine, reference = {}, {}
    for name, noisy, gt in folder_pairs(root):
        # A "denoised" image: the noisy one partly cleaned, values slightly outside [0, 1].
        output = (0.6 * gt + 0.4 * noisy + rng.normal(0, 0.01, gt.shape)).astype(np.float32)
        out8, gt8 = quantize(output, 8), quantize(gt, 8)
        official8 = official_util.tensor2img_Real(torch.from_numpy(output.transpose(2, 0, 1)))
        mine[f'{name}_uint8'] = quantize(output, 8)
        reference[f'{name}_uint8'] = official8.transpose(1, 2, 0)
        mine[f'{name}_psnr'] = np.float64(calculate_psnr(out8, gt8))
        reference[f'{name}_psnr'] = np.float64(official_util.calculate_psnr(out8, gt8))
        mine[f'{name}_ssim'] = np.float64(calculate_ssim(out8, gt8))
        reference[f'{name}_ssim'] = np.float64(official_util.calculate_ssim(out8, gt8))
    return mine, reference


def lr_per_iteration(scheduler_step, optimizer_lr, iterations: Sequence[int], total: int) -> Dict[int, float]:
    """The lr each iteration runs with (1-based), stepping after each optimiser step as both
    training loops do (official train.py: optimize_parameters, then update_learning_rate)."""
    wanted, lrs = set(iterations), {}
    for iteration in range(1, total + 1):
        if iteration in wanted:
            lrs[iteration] = optimizer_lr()
        scheduler_step()
    return lrs


def compare_lr(official_scheduler, config_file: str) -> Tuple[dict, dict]:
    import torch

    cfg = load_config(config_file).train
    total = cfg.niter
    probes = sorted(set(np.linspace(1, total, 2000).astype(int).tolist()
                        + [s + d for s in cfg.lr_steps for d in (-1, 0, 1, 2)] + [1, total]))
    net = build_invnet(3, 3, [1, 1], 4)
    optimizer, scheduler = build_optimizer(cfg, net.parameters())
    ours = lr_per_iteration(scheduler.step, optimizer.get_lr, probes, total)
    weight = torch.nn.Parameter(torch.zeros(1))
    torch_optimizer = torch.optim.Adam([weight], lr=cfg.lr_G, betas=(cfg.beta1, cfg.beta2))
    theirs_scheduler = official_scheduler.MultiStepLR_Restart(
        torch_optimizer, list(cfg.lr_steps), restarts=None, weights=None, gamma=cfg.lr_gamma)
    with warnings.catch_warnings():  # torch warns that no optimiser step precedes the scheduler's
        warnings.simplefilter('ignore', UserWarning)
        theirs = lr_per_iteration(theirs_scheduler.step, lambda: torch_optimizer.param_groups[0]['lr'],
                                  probes, total)
    return ({'lr': np.array([ours[i] for i in probes])},
            {'lr': np.array([theirs[i] for i in probes]), 'iteration': np.array(probes)})


def compare_initialisation(official, seed: int) -> Tuple[dict, dict, float, str]:
    """Per tensor: [mean, std, min, max] of each code's fresh model; and the smallest KS p-value."""
    import torch
    from scipy.stats import ks_2samp

    torch.manual_seed(seed)
    torch_net = official.Inv_arch.InvNet(3, 3, official.Subnet_constructor.subnet('Resnet'), [8, 8], 2)
    paddle.seed(seed)
    paddle_net = build_invnet(**paper_default('network_G'))
    theirs = {k: v.detach().numpy() for k, v in torch_net.state_dict().items()}
    ours = {k: v.numpy() for k, v in paddle_net.state_dict().items()}
    mine, reference, worst_p, worst_key = {}, {}, 1.0, ''
    for key, value in ours.items():
        mine[key] = np.array([value.mean(), value.std(), value.min(), value.max()])
        reference[key] = np.array([theirs[key].mean(), theirs[key].std(), theirs[key].min(), theirs[key].max()])
        if 'haar' in key:
            continue  # fixed filters, identical by construction
        p = ks_2samp(value.ravel(), theirs[key].ravel()).pvalue
        if p < worst_p:
            worst_p, worst_key = p, key
    return mine, reference, worst_p, worst_key


def difference(mine: dict, reference: dict) -> Tuple[float, str]:
    diffs = {k: float(np.abs(np.asarray(mine[k], np.float64) - np.asarray(reference[k], np.float64)).max())
             for k in reference if k in mine}
    key = max(diffs, key=diffs.get)
    return diffs[key], key


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    if os.path.isdir(args.result_dir) and os.listdir(args.result_dir) and not args.overwrite:
        cli.fail(f'--result_dir {args.result_dir} is not empty; pass --overwrite to write into it')
    try:
        import torch  # noqa: F401
    except ImportError:
        cli.fail('this tool needs PyTorch: pip install torch==2.13.0 (or bash tools/install.sh --test)')
    codes = official_codes_dir(args.torch_repo)
    data = import_official(codes, 'data', ('LQGTRN_dataset', 'util'))
    models = import_official(codes)
    schedulers = import_official(codes, 'models', ('lr_scheduler',))
    with torchvision_stand_in():
        utils = import_official(codes, 'utils', ('util',))
    paddle.set_device('cpu')
    os.makedirs(args.result_dir, exist_ok=True)
    train_root = os.path.join(args.data_dir, 'train_mini')
    rows: List[Tuple[str, int, float, float, str, str]] = []  # step, count, diff, threshold, worst, note

    with tempfile.TemporaryDirectory(prefix='align_steps_') as workdir:
        no_lq = os.path.join(workdir, 'train_no_lq')
        for sub in ('GT', 'Noisy'):
            shutil.copytree(os.path.join(train_root, sub), os.path.join(no_lq, sub))
        steps = {
            'data_train': (compare_training_data(data, train_root, args, with_lq=True), 0.0,
                           'LQ/ read; pixel values must be identical'),
            'data_train_no_lq': (compare_training_data(data, no_lq, args, with_lq=False), 1e-6,
                                 'LQ computed: MATLAB imresize, float32 (official imresize_np)'),
            'data_val': (compare_validation_data(data, os.path.join(args.data_dir, 'val_mini')), 0.0, ''),
            'data_mat': (compare_mat_blocks(data.util, workdir, args.seed), 0.0, ''),
            'metrics': (compare_metrics(utils.util, os.path.join(args.data_dir, 'val_mini'), args.seed),
                        1e-9, 'PSNR, SSIM (dB / index) and the uint8 conversion'),
        }
        for name in ('training_1card.yml', 'training_4cards.yml'):
            steps[f'lr_{name[:-4]}'] = (compare_lr(schedulers.lr_scheduler, os.path.join(cli.REPO_ROOT, name)),
                                        1e-12, 'lr at every milestone +-1 and 2,000 points of the run')
        init_mine, init_reference, worst_p, worst_key = compare_initialisation(models, args.seed)

    failed = []
    for step, ((mine, reference), threshold, note) in steps.items():
        save_logger(args.result_dir, step, 'paddle', mine)
        save_logger(args.result_dir, step, 'torch', reference)
        diff, key = difference(mine, reference)
        rows.append((step, len(reference), diff, threshold, key, note))
        if not diff <= threshold:
            failed.append(f'{step}: {diff:.3g} > {threshold:g} ({key})')
    save_logger(args.result_dir, 'init', 'paddle', init_mine)
    save_logger(args.result_dir, 'init', 'torch', init_reference)
    ks_threshold = KS_ALPHA / len([k for k in init_mine if 'haar' not in k])
    init_diff, init_key = difference(init_mine, init_reference)
    rows.append(('init', len(init_mine), worst_p, ks_threshold, worst_key,
                 f'smallest KS p-value (pass: >= {ks_threshold:.2g}); largest difference of '
                 f'[mean, std, min, max] {init_diff:.3g} ({init_key})'))
    if worst_p < ks_threshold:
        failed.append(f'init: KS p {worst_p:.3g} < {ks_threshold:.2g} ({worst_key})')

    lines = ['# Alignment steps: InvDN-Paddle vs official PyTorch InvDN', '',
             f'Official code: {codes}; data {args.data_dir}; {args.samples} training samples, GT '
             f'{args.gt_size}, seed {args.seed}; paddle {paddle.__version__}.', '',
             '| step | compared | max abs difference | threshold | pass | worst | note |',
             '|---|---|---|---|---|---|---|']
    for step, count, diff, threshold, key, note in rows:
        passed = diff >= threshold if step == 'init' else diff <= threshold
        lines.append(f'| {step} | {count} | {diff:.3g} | {threshold:.3g} | {"yes" if passed else "NO"} '
                     f'| {key} | {note} |')
    if failed:
        lines += ['', 'FAILED: ' + '; '.join(failed)]
    report = os.path.join(args.result_dir, 'report.md')
    with open(report, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print(f'report and reprod_log files written to {args.result_dir}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
