"""Denoise your own images (PNG/JPEG/TIFF, 8- or 16-bit, any size) with a trained InvDN.

Results keep the input file names and bit depth (JPEG inputs are written as PNG unless
--output_format same). With --gt_dir, PSNR/SSIM are printed per image (on 8-bit quantised
images, as for SIDD) and as means. An unreadable image is reported by name and the
others are still processed; the exit status is then 1.

  python predict.py --input photo.png --result_dir out --weights W
  python predict.py --input noisy_dir --gt_dir clean_dir --result_dir out --save_comparison
"""
from apps import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    cli.add_io_args(parser, result_dir='results/predict')
    cli.add_image_output_args(parser)
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    cli.add_backend_args(parser, photos=True)
    cli.add_denoise_args(parser, self_ensemble=False)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from apps import models
    from apps.images import denoise_files, finish_image_job, plan_image_job

    with plan_image_job(args, 'predict', {'weights': cli.find_weights(args.weights)[0]}) as job:
        model = models.load_model(args, options=job.options)
        backend = models.open_backend(args.backend, model, args.weights, args.precision,
                                      job.work_megapixels)
        report = denoise_files(backend, job.files, args.result_dir, job.options, gt_dir=args.gt_dir,
                               batch_size=args.batch_size, save_comparison=args.save_comparison,
                               output_format=args.output_format, max_pixels=job.max_pixels)
    finish_image_job(report, job, args.result_dir)

if __name__ == '__main__':
    main()
