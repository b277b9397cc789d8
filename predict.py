"""Denoise your own images (PNG/JPEG/TIFF, 8- or 16-bit, any size) with a trained InvDN.

Results keep the input file names and bit depth. With --gt_dir, PSNR/SSIM are printed per
image (on 8-bit quantised images, as for SIDD) and as means. An unreadable image is
reported by name and the others are still processed; the exit status is then 1.

  python predict.py --input photo.png --result_dir out --weights W
  python predict.py --input noisy_dir --gt_dir clean_dir --result_dir out --save_comparison
"""
import argparse
import os
import sys

from utils.cli import (add_backend_arg, add_bool_arg, add_model_args, denoiser_from_args, image_files,
                       matching_file, model_from_args, parse_seed)
from utils.cpu_speed import configure_cpu


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True, help='a noisy image, or a folder of them')
    parser.add_argument('--result_dir', default='results/predict',
                        help='output folder: denoised images under the input names '
                             '(default: results/predict)')
    parser.add_argument('--gt_dir', help='clean images of the same names (a file when --input is a file): '
                                         'print PSNR/SSIM')
    add_model_args(parser)
    add_backend_arg(parser)
    parser.add_argument('--mc_samples', type=int, default=1,
                        help='latent draws averaged per image (the paper evaluates with 16) (default: 1)')
    add_bool_arg(parser, '--self_ensemble', default=False,
                 help='average over the 8 flips/transposes (8x slower; used for the paper\'s figures)')
    parser.add_argument('--gaussian_scale', type=float, default=1.0,
                        help='standard deviation of the latent z (default: 1.0, as trained)')
    parser.add_argument('--seed', type=parse_seed, default=0,
                        help="latent seed; infer.py with the same seed gives the same images; 'none' "
                             'draws fresh z (default: 0)')
    parser.add_argument('--tile', type=int, default=None,
                        help='denoise in overlapping tiles of this size, blended smoothly, to bound '
                             'memory on large photos (e.g. 512) (default: whole image)')
    parser.add_argument('--tile_overlap', type=int, default=32,
                        help='overlap between tiles in pixels (default: 32)')
    add_bool_arg(parser, '--save_comparison', default=False,
                 help='also write noisy | denoised | GT side by side to result_dir/comparison')
    add_bool_arg(parser, '--overwrite', default=False, help='replace existing files in result_dir')
    args = parser.parse_args(argv)
    if args.mc_samples < 1:
        parser.error('--mc_samples must be >= 1')
    return args


def comparison_path(result_dir: str, name: str) -> str:
    return os.path.join(result_dir, 'comparison', os.path.splitext(name)[0] + '.png')


def main(argv=None) -> None:
    args = parse_args(argv)
    configure_cpu()  # before the first Paddle op
    import numpy as np

    from utils.denoise import denoise_array
    from utils.evaluate import score
    from utils.image_io import ImageReadError, quantize, read_image, read_image_with_depth, write_image

    try:
        files = image_files(args.input, '--input')
        if args.gt_dir and not os.path.exists(args.gt_dir):
            raise FileNotFoundError(f'--gt_dir not found: {args.gt_dir}')
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    model = denoiser_from_args(model_from_args(args), args)

    names = [os.path.basename(f) for f in files]
    targets = [os.path.join(args.result_dir, n) for n in names]
    if args.save_comparison:
        targets += [comparison_path(args.result_dir, n) for n in names]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not args.overwrite:
        sys.exit(f'error: {len(existing)} result file(s) already exist, e.g. {existing[0]}; '
                 'pass --overwrite to replace them or choose another --result_dir')

    failures, scores = [], []
    for path, name in zip(files, names):
        try:
            noisy, bit_depth = read_image_with_depth(path)
            denoised = denoise_array(model, noisy, mc_samples=args.mc_samples,
                                     self_ensemble=args.self_ensemble, gaussian_scale=args.gaussian_scale,
                                     seed=args.seed, tile=args.tile, tile_overlap=args.tile_overlap)
            write_image(os.path.join(args.result_dir, name), denoised, bit_depth)
            gt_path = matching_file(args.gt_dir, name)
            gt = read_image(gt_path) if gt_path else None
            if gt is not None:
                if gt.shape != noisy.shape:
                    raise ValueError(f'GT {gt_path} is {gt.shape[1]}x{gt.shape[0]}, '
                                     f'noisy is {noisy.shape[1]}x{noisy.shape[0]}')
                psnr, ssim = score(denoised, gt)
                scores.append((psnr, ssim))
                print(f'{name}: PSNR {psnr:.2f} dB, SSIM {ssim:.4f}')
            else:
                print(f'{name}: denoised')
            if args.save_comparison:
                panels = [noisy, denoised] + ([gt] if gt is not None else [])
                write_image(comparison_path(args.result_dir, name),
                            np.concatenate([quantize(p, 8) for p in panels], axis=1))
        except (ImageReadError, ValueError, OSError) as err:
            failures.append(f'{name}: {err}')
            print(f'FAILED {name}: {err}', file=sys.stderr)

    done = len(files) - len(failures)
    print(f'denoised {done} of {len(files)} image(s) into {args.result_dir}')
    if scores:
        print(f'mean over {len(scores)}: PSNR {np.mean([s[0] for s in scores]):.2f} dB, '
              f'SSIM {np.mean([s[1] for s in scores]):.4f}')
    if failures:
        sys.exit(f'error: {len(failures)} image(s) failed:\n  ' + '\n  '.join(failures))


if __name__ == '__main__':
    main()
