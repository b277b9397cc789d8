"""Denoise your own images (PNG/JPEG/TIFF, 8- or 16-bit, any size) with a trained InvDN.

Results keep the input file names and bit depth (JPEG inputs are written as PNG unless
--output_format same). With --gt_dir, PSNR/SSIM are printed per image (on 8-bit quantised
images, as for SIDD) and as means. An unreadable image is reported by name and the
others are still processed; the exit status is then 1.

  python predict.py --input photo.png --result_dir out --weights W
  python predict.py --input noisy_dir --gt_dir clean_dir --result_dir out --save_comparison
"""
import numpy as np

from engine import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    cli.add_io_args(parser, result_dir='results/predict')
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    cli.add_backend_args(parser)
    cli.add_denoise_args(parser, self_ensemble=False)
    cli.add_bool_arg(parser, '--save_comparison', default=False,
                     help='also write noisy | denoised | GT side by side to result_dir/comparison')
    parser.add_argument('--output_format', choices=('lossless', 'same'), default='lossless',
                        help='lossless: JPEG inputs are written as PNG; same: keep each '
                             "input's format")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from engine.backends import open_backend
    from engine.images import denoise_files, planned_outputs

    options = cli.denoise_options(args)
    files = cli.image_files(args.input)
    cli.check_exists(args.gt_dir, '--gt_dir')
    cli.check_new_outputs(planned_outputs(files, args.result_dir, args.output_format,
                                          args.save_comparison), args.overwrite)
    backend = open_backend(args.backend, cli.load_model(args))
    print(f'back end: {backend.name}')

    report = denoise_files(backend, files, args.result_dir, options, gt_dir=args.gt_dir,
                           batch_size=args.batch_size, save_comparison=args.save_comparison,
                           output_format=args.output_format)
    print(f'denoised {report.written} of {len(files)} image(s) into {args.result_dir}')
    if report.scores:
        psnr, ssim = np.mean(list(report.scores.values()), axis=0)
        print(f'mean over {len(report.scores)}: PSNR {psnr:.2f} dB, SSIM {ssim:.4f}')
    if report.failures:
        cli.fail(f'{len(report.failures)} image(s) failed:\n  ' + '\n  '.join(report.failures))


if __name__ == '__main__':
    main()
