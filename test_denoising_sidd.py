"""SIDD evaluation: PSNR/SSIM on the validation blocks, and the benchmark submission file.

PSNR/SSIM are computed on outputs clipped to [0, 1] and quantised to uint8, as the SIDD
benchmark does (PSNR with data range 255, SSIM as MATLAB's reference). The default is the
official test configuration (test_InvDN.yml, self_ensemble: True): forward_x8, the 8
flips/transposes with one z draw each, averaged. Official MC_test is --self_ensemble False
--mc_samples 16; Multi_forward_x8 is --self_ensemble True --mc_samples 16 (16x slower).

  python test_denoising_sidd.py --weights W --val_dir SIDD_Valid_Srgb_Patches_256/valid
  python test_denoising_sidd.py --weights W --mat_dir DIR_WITH_VALIDATION_MATS
  python test_denoising_sidd.py --weights W --benchmark_mat BenchmarkNoisyBlocksSrgb.mat --submit_dir D
"""
import os

from apps import cli
from config import paper_default

# What training validates on (datasets.val.dataroot), where extract_valid_patches_sidd.py writes.
VAL_DIR = paper_default('datasets.val.dataroot')


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    data = parser.add_argument_group(
        'data (--val_dir, --mat_dir and/or --benchmark_mat; none: the configured validation folder, '
        f'{VAL_DIR})')
    data.add_argument('--val_dir', default=None,
                      help='folder with GT/ and Noisy/ blocks of the same file names (as written '
                           'by extract_valid_patches_sidd.py)')
    data.add_argument('--mat_dir', default=None,
                      help='folder with ValidationNoisyBlocksSrgb.mat and ValidationGtBlocksSrgb.mat '
                           '(MATLAB v5 or v7.3)')
    data.add_argument('--benchmark_mat', default=None,
                      help='BenchmarkNoisyBlocksSrgb.mat: denoise its blocks for a SIDD benchmark '
                           'submission (needs --submit_dir)')
    data.add_argument('--submit_dir', default=None,
                      help='where SubmitSrgb.mat (DenoisedBlocksSrgb, TimeMPSrgb) is written')
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    cli.add_backend_args(parser)
    cli.add_denoise_args(parser, self_ensemble=True, tiling=False)
    cli.add_pixel_limit_arg(parser)
    cli.add_batch_size_arg(parser, 'blocks denoised together; results do not depend on it')
    parser.add_argument('--crop_border', type=int, default=0,
                        help='pixels excluded at each border from PSNR/SSIM')
    cli.add_result_args(parser, 'results/test_denoising_sidd',
                        'where metrics.csv and metrics.json (per block, and means) are written')
    cli.add_bool_arg(parser, '--save_images', default=False,
                     help='also write the denoised blocks as PNG (under result_dir/images, and '
                          'submit_dir/images for the benchmark)')
    cli.add_bool_arg(parser, '--progress', default=True, help='show a progress bar with ETA')
    args = parser.parse_args(argv)
    args.configured_val_dir = not (args.val_dir or args.mat_dir or args.benchmark_mat)
    if args.configured_val_dir:
        args.val_dir = VAL_DIR
    if args.val_dir and args.mat_dir:
        parser.error('give either --val_dir or --mat_dir, not both')
    if bool(args.benchmark_mat) != bool(args.submit_dir):
        parser.error('--benchmark_mat and --submit_dir go together')
    return args


def metrics_paths(args) -> list:
    return [os.path.join(args.result_dir, name) for name in ('metrics.csv', 'metrics.json')]


def evaluate_validation(backend, options, pairs, args) -> None:
    from core.evaluate import evaluate_pairs, mean_lines

    print(f'evaluating {len(pairs)} blocks: mc_samples={options.mc_samples}, '
          f'self_ensemble={options.self_ensemble}, seed={options.seed}, back end {backend.name}')
    result = evaluate_pairs(backend, pairs, options, crop_border=args.crop_border,
                            progress=args.progress, batch_size=args.batch_size,
                            save_dir=os.path.join(args.result_dir, 'images') if args.save_images else None)
    os.makedirs(args.result_dir, exist_ok=True)
    outputs = metrics_paths(args)
    result.save(*outputs)
    print(mean_lines(result.psnr, result.ssim))
    print(f'per-block results: {outputs[0]}, {outputs[1]}')
    if result.failed:
        cli.fail(f'{len(result.failed)} pair(s) could not be read (left out of the means):\n  '
                 + '\n  '.join(result.failed))


def denoise_benchmark(backend, options, args) -> None:
    from apps.sidd_submission import write_submission

    submission = write_submission(backend, args.benchmark_mat, args.submit_dir, options,
                                  args.batch_size, args.save_images, args.progress)
    print(f'wrote {submission.path}: DenoisedBlocksSrgb {submission.shape} uint8, '
          f'TimeMPSrgb {submission.seconds_per_megapixel:.3f} s/MP')


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from apps import models
    from dataloaders import folder_pairs, sidd_mat_pairs

    options = cli.denoise_options(args)
    if args.configured_val_dir:
        if not os.path.isdir(VAL_DIR):
            cli.fail(f'no data given, and the configured validation folder {VAL_DIR} does not exist: '
                     'write it with python extract_valid_patches_sidd.py, or give --val_dir, '
                     '--mat_dir or --benchmark_mat')
        print(f'validation blocks: {VAL_DIR} (the configured folder; others: --val_dir or --mat_dir)')
    for flag in ('val_dir', 'mat_dir', 'benchmark_mat'):
        cli.check_exists(getattr(args, flag), f'--{flag}')
    outputs = metrics_paths(args) if args.val_dir or args.mat_dir else []
    if args.save_images:
        outputs += [os.path.join(args.result_dir, 'images')] if outputs else []
    if args.benchmark_mat:
        outputs.append(os.path.join(args.submit_dir, 'SubmitSrgb.mat'))
        outputs += [os.path.join(args.submit_dir, 'images')] if args.save_images else []
    cli.check_new_outputs(outputs, args.overwrite)
    try:  # pairing (and reading the .mat files) before the model is loaded and exported
        pairs = (folder_pairs(args.val_dir, cli.max_pixels(args)) if args.val_dir else
                 sidd_mat_pairs(args.mat_dir) if args.mat_dir else None)
    except (OSError, KeyError, ValueError) as err:
        cli.fail(err.args[0] if isinstance(err, KeyError) else err)
    backend = models.open_backend(args.backend, models.load_model(args), args.weights, args.precision)
    try:
        if pairs is not None:
            evaluate_validation(backend, options, pairs, args)
        if args.benchmark_mat:
            denoise_benchmark(backend, options, args)
    except (OSError, KeyError, ValueError) as err:
        cli.fail(err.args[0] if isinstance(err, KeyError) else err)


if __name__ == '__main__':
    main()
