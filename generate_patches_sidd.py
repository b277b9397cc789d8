"""Cut SIDD-Medium sRGB pairs into random training patches: RESULT_DIR/{GT,Noisy}/{pair}_{patch}.PNG.

Source: SIDD_Medium_Srgb/Data/<scene>/*_GT_SRGB_*.PNG and the matching *_NOISY_SRGB_*.PNG.
The defaults (100 patches of 512x512 per pair) give the usual 32,000 training patches from the
320 pairs. GT and Noisy patches come from the same place; the bit depth is kept. Each patch
is written atomically, and the positions depend only on --seed and the pair's index, so an
interrupted run completed with --resume ends with exactly the files of an uninterrupted one.
"""
import os
import sys
from typing import List, Tuple

import numpy as np

from apps import cli
from config import paper_default
from utils.durable import resume_mismatch
from utils.image_io import read_image_raw, write_image
from utils.parallel import map_with_progress

GT_TAG, NOISY_TAG = '_GT_SRGB_', '_NOISY_SRGB_'


def find_pairs(src_dir: str) -> List[Tuple[str, str]]:
    """Sorted (GT, Noisy) paths under ``src_dir``, paired by name; unpaired files are an error."""
    gt_files, noisy_files = [], set()
    for folder, _, names in os.walk(src_dir):
        for name in names:
            if not name.lower().endswith('.png'):
                continue
            if GT_TAG in name:
                gt_files.append(os.path.join(folder, name))
            elif NOISY_TAG in name:
                noisy_files.add(os.path.join(folder, name))
    gt_files.sort()
    pairs, unpaired = [], []
    for gt in gt_files:
        folder, name = os.path.split(gt)
        noisy = os.path.join(folder, name.replace(GT_TAG, NOISY_TAG))
        if noisy in noisy_files:
            pairs.append((gt, noisy))
            noisy_files.discard(noisy)
        else:
            unpaired.append(gt)
    unpaired += sorted(noisy_files)
    if unpaired:
        raise ValueError(f'{len(unpaired)} file(s) under {src_dir} have no {GT_TAG}/{NOISY_TAG} partner '
                         f'in the same folder, e.g. {unpaired[:5]}')
    return pairs


def patch_paths(tar_dir: str, index: int, j: int) -> Tuple[str, str]:
    name = f'{index}_{j}.PNG'
    return os.path.join(tar_dir, 'GT', name), os.path.join(tar_dir, 'Noisy', name)


def cut_pair(task: Tuple[int, str, str, str, int, int, int, bool]) -> int:
    """Write ``num_patches`` aligned random patches of pair ``index`` (with ``resume``, only
    those not on disk yet); returns how many were written."""
    index, gt_path, noisy_path, tar_dir, ps, num_patches, seed, resume = task
    missing = [j for j in range(num_patches)
               if not (resume and all(map(os.path.isfile, patch_paths(tar_dir, index, j))))]
    if not missing:
        return 0
    gt, noisy = read_image_raw(gt_path), read_image_raw(noisy_path)
    if gt.shape != noisy.shape:
        raise ValueError(f'{gt_path} {gt.shape[:2]} and {noisy_path} {noisy.shape[:2]} differ in size')
    h, w = gt.shape[:2]
    if h < ps or w < ps:
        raise ValueError(f'{gt_path} is {w}x{h}, smaller than the patch size {ps}')
    rng = np.random.default_rng([seed, index])
    tops = rng.integers(0, h - ps + 1, size=num_patches)
    lefts = rng.integers(0, w - ps + 1, size=num_patches)
    for j in missing:
        top, left = tops[j], lefts[j]
        gt_out, noisy_out = patch_paths(tar_dir, index, j)
        write_image(gt_out, gt[top:top + ps, left:left + ps])
        write_image(noisy_out, noisy[top:top + ps, left:left + ps])
    return len(missing)


def main(argv=None) -> None:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--input', default='SIDD_Medium_Srgb/Data',
                        help='SIDD-Medium sRGB Data folder (scene folders with *_GT_SRGB_*.PNG, '
                             '*_NOISY_SRGB_*.PNG)')
    parser.add_argument('--result_dir', default=paper_default('datasets.train.dataroot'),
                        help='output folder; GT/ and Noisy/ are written in it')
    parser.add_argument('--ps', type=cli.positive_int, default=512, help='patch size in pixels')
    parser.add_argument('--num_patches', type=cli.positive_int, default=100,
                        help='random patches per image pair')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the patch positions')
    cli.add_num_workers_arg(parser)
    cli.add_bool_arg(parser, '--overwrite', default=False,
                     help='write into a non-empty --result_dir, replacing files of the same names '
                          '(nothing else is deleted)')
    cli.add_bool_arg(parser, '--resume', default=False,
                     help='complete an interrupted run into the same --result_dir with the same '
                          'settings: write the missing patches only')
    args = parser.parse_args(argv)
    if not os.path.isdir(args.input):
        cli.fail(f'--input: source folder not found: {args.input}')
    if args.resume and args.overwrite:
        cli.fail('--resume keeps existing patches and --overwrite rewrites them: pass one')
    if (os.path.isdir(args.result_dir) and os.listdir(args.result_dir) and not args.overwrite
            and not args.resume):
        cli.fail(f'result folder {args.result_dir} is not empty; it is left untouched. '
                 'Complete an interrupted run with --resume, choose another --result_dir or pass '
                 '--overwrite')
    try:
        pairs = find_pairs(args.input)
    except ValueError as err:
        cli.fail(err)
    if not pairs:
        cli.fail(f'no *{GT_TAG}*.PNG / *{NOISY_TAG}*.PNG pairs found under {args.input}')

    for sub in ('GT', 'Noisy'):
        os.makedirs(os.path.join(args.result_dir, sub), exist_ok=True)
    problem = resume_mismatch(args.result_dir, 'generate_patches_sidd',
                              {'input': os.path.abspath(args.input), 'ps': args.ps,
                               'num_patches': args.num_patches, 'seed': args.seed}, args.resume)
    if problem:
        cli.fail(problem)
    tasks = [(i, gt, noisy, args.result_dir, args.ps, args.num_patches, args.seed, args.resume)
             for i, (gt, noisy) in enumerate(pairs)]
    try:
        total = sum(map_with_progress(cut_pair, tasks, args.num_workers, 'pairs', unit='pair'))
    except (ValueError, OSError) as err:
        cli.fail(f'{err}\n(patches written so far are in {args.result_dir}; '
                 'rerun with --resume after fixing the source)')
    print(f'wrote {total} patch pairs from {len(pairs)} image pairs to {args.result_dir}')
    written = {f'{i}_{j}.PNG' for i in range(len(pairs)) for j in range(args.num_patches)}
    others = sorted(set(os.listdir(os.path.join(args.result_dir, 'GT'))) - written)
    if others:
        print(f'warning: {len(others)} older file(s) in {args.result_dir}/GT were not written by this run '
              f'and will be used for training, e.g. {others[:3]}', file=sys.stderr)
    if os.path.isdir(os.path.join(args.result_dir, 'LQ')):
        print(f'warning: {args.result_dir}/LQ was made from earlier patches; '
              f'run generate_lq.py --input {args.result_dir} --overwrite', file=sys.stderr)


if __name__ == '__main__':
    main()
