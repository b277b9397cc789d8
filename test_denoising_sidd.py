"""SIDD evaluation: PSNR/SSIM on the validation blocks, and the benchmark submission file.

PSNR/SSIM are computed on outputs clipped to [0, 1] and quantised to uint8, as the SIDD
benchmark does (PSNR with data range 255, SSIM as MATLAB's reference). The paper
(39.28 dB) evaluates with Monte-Carlo self-ensemble: 16 latent draws for each of the 8
flips/transposes, the default here.

  python test_denoising_sidd.py --weights W --val_dir SIDD_Valid_Srgb_Patches_256/valid
  python test_denoising_sidd.py --weights W --mat_dir DIR_WITH_VALIDATION_MATS
  python test_denoising_sidd.py --weights W --benchmark_mat BenchmarkNoisyBlocksSrgb.mat --submit_dir D
"""
import argparse
import os
import sys
import time

import numpy as np

from utils.cli import add_backend_arg, add_bool_arg, add_model_args, denoiser_from_args, model_from_args, parse_seed
from utils.cpu_speed import configure_cpu

SUBMIT_KEY = 'BenchmarkNoisyBlocksSrgb'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group('data (at least one of --val_dir, --mat_dir, --benchmark_mat)')
    data.add_argument('--val_dir', help='folder with GT/ and Noisy/ blocks of the same file names '
                                        '(as written by extract_valid_patches_sidd.py)')
    data.add_argument('--mat_dir', help='folder with ValidationNoisyBlocksSrgb.mat and '
                                        'ValidationGtBlocksSrgb.mat (MATLAB v5 or v7.3)')
    data.add_argument('--benchmark_mat', help='BenchmarkNoisyBlocksSrgb.mat: denoise its blocks for '
                                              'a SIDD benchmark submission (needs --submit_dir)')
    data.add_argument('--submit_dir', help='where SubmitSrgb.mat (DenoisedBlocksSrgb, TimeMPSrgb) '
                                           'is written')
    add_model_args(parser)
    add_backend_arg(parser)
    parser.add_argument('--mc_samples', type=int, default=1,
                        help='latent draws averaged per input and ensemble variant (official '
                             'MC_test uses 16; 16 with --self_ensemble is official '
                             'Multi_forward_x8, 16x slower) (default: 1)')
    add_bool_arg(parser, '--self_ensemble', default=True,
                 help='average over the 8 flips/transposes, one z each: official forward_x8, '
                      'the setting of the official test_InvDN.yml (self_ensemble: True) and of '
                      "the earlier Paddle reproduction's 39.29 dB")
    parser.add_argument('--gaussian_scale', type=float, default=1.0,
                        help='standard deviation of the latent z (default: 1.0, as trained)')
    parser.add_argument('--seed', type=parse_seed, default=0,
                        help="latent seed for reproducible results; 'none' draws fresh z (default: 0)")
    parser.add_argument('--batch_size', type=int, default=1,
                        help='blocks denoised together; results do not depend on it (default: 1)')
    parser.add_argument('--crop_border', type=int, default=0,
                        help='pixels excluded at each border from PSNR/SSIM (default: 0)')
    parser.add_argument('--save_dir', default='results/test_denoising_sidd',
                        help='where metrics.csv and metrics.json (per block, and means) are written '
                             '(default: results/test_denoising_sidd)')
    add_bool_arg(parser, '--save_images', default=False,
                 help='also write the denoised blocks as PNG (under save_dir/images, and '
                      'submit_dir/images for the benchmark)')
    add_bool_arg(parser, '--overwrite', default=False, help='replace existing result files')
    add_bool_arg(parser, '--progress', default=True, help='show a progress bar with ETA')
    args = parser.parse_args(argv)
    if not (args.val_dir or args.mat_dir or args.benchmark_mat):
        parser.error('give --val_dir, --mat_dir or --benchmark_mat')
    if args.val_dir and args.mat_dir:
        parser.error('give either --val_dir or --mat_dir, not both')
    if bool(args.benchmark_mat) != bool(args.submit_dir):
        parser.error('--benchmark_mat and --submit_dir go together')
    if args.mc_samples < 1 or args.batch_size < 1:
        parser.error('--mc_samples and --batch_size must be >= 1')
    return args


def check_free(paths, overwrite: bool) -> None:
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        sys.exit(f'error: {", ".join(existing)} already exist(s); pass --overwrite to replace')


def evaluate_validation(model, args) -> None:
    from utils.evaluate import evaluate_pairs, folder_pairs, sidd_mat_pairs

    outputs = [os.path.join(args.save_dir, name) for name in ('metrics.csv', 'metrics.json')]
    check_free(outputs, args.overwrite)
    pairs = folder_pairs(args.val_dir) if args.val_dir else sidd_mat_pairs(args.mat_dir)
    print(f'evaluating {len(pairs)} blocks: mc_samples={args.mc_samples}, '
          f'self_ensemble={args.self_ensemble}, seed={args.seed}')
    result = evaluate_pairs(model, pairs, mc_samples=args.mc_samples, self_ensemble=args.self_ensemble,
                            crop_border=args.crop_border, seed=args.seed,
                            gaussian_scale=args.gaussian_scale, progress=args.progress,
                            save_dir=os.path.join(args.save_dir, 'images') if args.save_images else None,
                            batch_size=args.batch_size)
    os.makedirs(args.save_dir, exist_ok=True)
    result.save(*outputs)
    print(f'PSNR: {result.psnr:.2f}')
    print(f'SSIM: {result.ssim:.3f}')
    print(f'per-block results: {outputs[0]}, {outputs[1]}')
    if result.failed:
        sys.exit(f'error: {len(result.failed)} pair(s) could not be read (left out of the means):\n  '
                 + '\n  '.join(result.failed))


def denoise_benchmark(model, args) -> None:
    """SubmitSrgb.mat as the official test_Real.py writes it, with the measured time per megapixel."""
    import scipy.io
    from tqdm import tqdm

    from extract_valid_patches_sidd import load_blocks
    from utils.denoise import denoise_array
    from utils.image_io import quantize, write_image

    submit_path = os.path.join(args.submit_dir, 'SubmitSrgb.mat')
    check_free([submit_path], args.overwrite)
    noisy = load_blocks(args.benchmark_mat, SUBMIT_KEY)
    num_images, num_blocks = noisy.shape[:2]
    blocks = noisy.reshape((-1,) + noisy.shape[2:])
    outputs = []
    start = time.perf_counter()
    for first in tqdm(range(0, len(blocks), args.batch_size), desc='benchmark', unit='batch',
                      disable=not args.progress):
        batch = blocks[first:first + args.batch_size].astype(np.float32) / 255.0
        outputs.append(quantize(denoise_array(model, batch, mc_samples=args.mc_samples,
                                              self_ensemble=args.self_ensemble,
                                              gaussian_scale=args.gaussian_scale, seed=args.seed)))
    seconds = time.perf_counter() - start
    denoised = np.concatenate(outputs).reshape(noisy.shape)
    megapixels = blocks.shape[0] * blocks.shape[1] * blocks.shape[2] / 1e6
    os.makedirs(args.submit_dir, exist_ok=True)
    scipy.io.savemat(submit_path, {'DenoisedBlocksSrgb': denoised, 'TimeMPSrgb': seconds / megapixels})
    if args.save_images:
        for i in range(num_images):
            for b in range(num_blocks):
                write_image(os.path.join(args.submit_dir, 'images', f'{i}_{b}.png'), denoised[i, b])
    print(f'wrote {submit_path}: DenoisedBlocksSrgb {list(denoised.shape)} uint8, '
          f'TimeMPSrgb {seconds / megapixels:.3f} s/MP')


def main(argv=None) -> None:
    args = parse_args(argv)
    configure_cpu()  # before the first Paddle op
    model = denoiser_from_args(model_from_args(args), args)
    try:
        if args.val_dir or args.mat_dir:
            evaluate_validation(model, args)
        if args.benchmark_mat:
            denoise_benchmark(model, args)
    except (OSError, KeyError, ValueError) as err:
        sys.exit(f'error: {err.args[0] if isinstance(err, KeyError) else err}')


if __name__ == '__main__':
    main()
