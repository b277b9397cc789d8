"""Write the SIDD validation blocks as PNG: RESULT_DIR/{GT,Noisy}/{image}_{block}.PNG.

Reads ValidationGtBlocksSrgb.mat and ValidationNoisyBlocksSrgb.mat (uint8 RGB arrays
[images, blocks, 256, 256, 3] under keys of the same names; MATLAB v5 or v7.3/HDF5) from
--input. The PNG files open as the same RGB pixels (40 x 32 = 1280 blocks for SIDD). Each
file is written atomically; --resume completes an interrupted run, writing the missing blocks only.
"""
import os
from typing import Tuple

import numpy as np

from apps import cli
from config import paper_default
from dataloaders.sidd_mat import MAT_KEYS, block_name, load_blocks
from utils.durable import resume_mismatch
from utils.image_io import write_image
from utils.parallel import map_with_progress


def write_image_blocks(task: Tuple[int, np.ndarray, np.ndarray, str, bool]) -> int:
    """Write the blocks of one validation image (with ``resume``, those not on disk yet);
    returns how many were written."""
    index, gt, noisy, tar_dir, resume = task
    written = 0
    for b in range(gt.shape[0]):
        paths = [os.path.join(tar_dir, sub, block_name(index, b) + '.PNG') for sub in ('GT', 'Noisy')]
        if resume and all(map(os.path.isfile, paths)):
            continue
        write_image(paths[0], gt[b])
        write_image(paths[1], noisy[b])
        written += 1
    return written


def main(argv=None) -> None:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--input', default='.', help='folder holding the two validation .mat files')
    parser.add_argument('--result_dir', default=paper_default('datasets.val.dataroot'),
                        help='output folder; GT/ and Noisy/ are written in it')
    cli.add_num_workers_arg(parser)
    cli.add_bool_arg(parser, '--overwrite', default=False,
                     help='write into a non-empty --result_dir, replacing files of the same names '
                          '(nothing else is deleted)')
    cli.add_bool_arg(parser, '--resume', default=False,
                     help='complete an interrupted run into the same --result_dir: write the '
                          'missing blocks only')
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        cli.fail('--resume keeps existing blocks and --overwrite rewrites them: pass one')
    if (os.path.isdir(args.result_dir) and os.listdir(args.result_dir) and not args.overwrite
            and not args.resume):
        cli.fail(f'result folder {args.result_dir} is not empty; it is left untouched. '
                 'Complete an interrupted run with --resume, choose another --result_dir or pass '
                 '--overwrite')
    try:
        gt, noisy = (load_blocks(os.path.join(args.input, MAT_KEYS[k] + '.mat'), MAT_KEYS[k])
                     for k in ('GT', 'Noisy'))
    except (OSError, KeyError, ValueError, NotImplementedError) as err:
        cli.fail(err.args[0] if isinstance(err, KeyError) else err)
    if gt.shape != noisy.shape:
        cli.fail(f'GT blocks {gt.shape} and Noisy blocks {noisy.shape} differ in shape')

    for sub in ('GT', 'Noisy'):
        os.makedirs(os.path.join(args.result_dir, sub), exist_ok=True)
    problem = resume_mismatch(args.result_dir, 'extract_valid_patches_sidd',
                              {'input': os.path.abspath(args.input)}, args.resume)
    if problem:
        cli.fail(problem)
    tasks = [(i, gt[i], noisy[i], args.result_dir, args.resume) for i in range(gt.shape[0])]
    try:
        total = sum(map_with_progress(write_image_blocks, tasks, args.num_workers, 'images'))
    except OSError as err:
        cli.fail(f'{err}\n(blocks written so far are in {args.result_dir}; complete them with --resume)')
    print(f'wrote {total} GT/Noisy block pairs ({gt.shape[0]} images x {gt.shape[1]} blocks) to {args.result_dir}')


if __name__ == '__main__':
    main()
