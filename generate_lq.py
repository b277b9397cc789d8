"""Write the low-resolution targets: INPUT/LQ/<name> = MATLAB bicubic imresize(INPUT/GT/<name>, 1/scale).

The training dataset computes LQ on the fly when INPUT/LQ is absent; writing it once saves that
work in every epoch. The bit depth of each GT file is kept. Every file is written atomically,
and files that exist are kept: a rerun of an interrupted run completes the missing ones only
(``--resume`` says so explicitly; ``--overwrite`` recomputes all).
"""
import os
from typing import Tuple

from apps import cli
from config import paper_default
from utils.durable import DiskFullError, resume_mismatch
from utils.image_io import DEFAULT_MAX_PIXELS, list_images, read_image_with_depth, write_image
from utils.matlab_imresize import imresize
from utils.parallel import map_with_progress


def make_lq(gt_path: str, lq_path: str, scale: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """One LQ file (atomic: an interrupted run leaves no truncated image behind); a GT above
    ``max_pixels`` is refused from its header, before decoding."""
    gt, depth = read_image_with_depth(gt_path, max_pixels)
    write_image(lq_path, imresize(gt, 1 / scale), bit_depth=depth)


def _job(task: Tuple[str, str, int, int]) -> str:
    """'' when written, else the reason (the other files are still processed); a full disk
    stops the run."""
    try:
        make_lq(*task)
    except DiskFullError:
        raise
    except (OSError, ValueError) as err:
        return str(err)
    return ''


def main(argv=None) -> None:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--input', default=paper_default('datasets.train.dataroot'),
                        help='folder holding GT/; LQ/ is written beside it')
    parser.add_argument('--scale', type=cli.positive_int, default=paper_default('scale'),
                        help='downscaling factor')
    cli.add_num_workers_arg(parser)
    cli.add_pixel_limit_arg(parser)
    cli.add_bool_arg(parser, '--overwrite', default=False,
                     help='recompute LQ files that already exist (otherwise they are kept)')
    cli.add_bool_arg(parser, '--resume', default=False,
                     help='complete an interrupted run: write the missing LQ files only (also '
                          'what a run without --overwrite does)')
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        cli.fail('--resume keeps existing files and --overwrite recomputes them: pass one')

    gt_dir, lq_dir = os.path.join(args.input, 'GT'), os.path.join(args.input, 'LQ')
    if not os.path.isdir(gt_dir):
        cli.fail(f'--input: GT folder not found: {gt_dir}')
    gt_paths = list_images(gt_dir)
    if not gt_paths:
        cli.fail(f'no images in {gt_dir}')
    os.makedirs(lq_dir, exist_ok=True)
    problem = resume_mismatch(args.input, 'generate_lq', {'scale': args.scale}, not args.overwrite)
    if problem:
        cli.fail(f'{problem} (or pass --overwrite to recompute every LQ file)')
    tasks = [(p, os.path.join(lq_dir, os.path.basename(p)), args.scale, cli.max_pixels(args))
             for p in gt_paths]
    todo = [t for t in tasks if args.overwrite or not os.path.exists(t[1])]
    kept = len(tasks) - len(todo)

    try:
        problems = sorted(p for p in map_with_progress(_job, todo, args.num_workers, 'LQ') if p)
    except OSError as err:
        cli.fail(err)
    print(f'wrote {len(todo) - len(problems)} LQ images to {lq_dir}'
          + (f'; kept {kept} existing ones (--overwrite recomputes them)' if kept else ''))
    if problems:
        cli.fail(f'{len(problems)} of {len(todo)} GT images could not be used (the others were '
                 'written; fix these and rerun, which writes the missing LQ files only):\n  '
                 + '\n  '.join(problems))


if __name__ == '__main__':
    main()
