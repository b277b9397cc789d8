"""DND sRGB benchmark: denoise every box of the Darmstadt Noise Dataset and bundle the submission.

Reads DND_DIR/info.mat (bounding boxes) and DND_DIR/images_srgb/%04d.mat (InoisySRGB), denoises
each box with the one denoise routine (default: the official test configuration, forward_x8),
and writes, as the official test_Real.py does, RESULT_DIR/Submit/%04d_%02d.mat (Idenoised_crop,
float32 in [0, 1], not quantised) and the files to upload, RESULT_DIR/bundled/%04d.mat
(Idenoised, israw, eval_version). A stopped run continues with --resume (only the missing
boxes are denoised).

  python test_denoising_dnd.py --dnd_dir DND --weights W --result_dir results/dnd
"""
import os

from apps import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    parser.add_argument('--dnd_dir', required=True,
                        help='the DND folder: info.mat and images_srgb/0001.mat ...')
    cli.add_result_args(parser, 'results/dnd', 'where Submit/, bundled/ (and Images/) are written')
    cli.add_bool_arg(parser, '--resume', default=False,
                     help='continue a submission in --result_dir: denoise only the missing boxes')
    cli.add_bool_arg(parser, '--save_images', default=False,
                     help='also write each denoised box as PNG under result_dir/Images')
    cli.add_bool_arg(parser, '--progress', default=True, help='show a progress bar with ETA')
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    cli.add_backend_args(parser)
    cli.add_denoise_args(parser, self_ensemble=True, tiling=False)
    cli.add_pixel_limit_arg(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from dataloaders.dnd import read_boxes
    from apps import models
    from apps.dnd_submission import denoise_dnd

    options = cli.denoise_options(args)
    try:  # the boxes are read before the model is loaded
        boxes = read_boxes(args.dnd_dir)
    except (OSError, KeyError, ValueError) as err:
        cli.fail(err.args[0] if isinstance(err, KeyError) else err)
    started = os.path.isdir(args.result_dir) and os.listdir(args.result_dir)
    if started and not (args.resume or args.overwrite):
        cli.fail(f'{args.result_dir} already holds a submission; continue it with --resume, or '
                 'replace it with --overwrite, or choose another --result_dir')
    print(f'DND: {len(boxes)} image(s), {sum(len(b) for b in boxes)} boxes; mc_samples='
          f'{options.mc_samples}, self_ensemble={options.self_ensemble}, seed={options.seed}')
    backend = models.open_backend(args.backend, models.load_model(args), args.weights, args.precision)
    try:
        report = denoise_dnd(backend, args.dnd_dir, args.result_dir, options, args.save_images,
                             args.progress, resume=args.resume, max_pixels=cli.max_pixels(args))
    except (OSError, KeyError, ValueError) as err:
        cli.fail(err.args[0] if isinstance(err, KeyError) else err)
    print(f'denoised {report.denoised} of {report.boxes} boxes ({report.boxes - report.denoised} kept '
          f'from the earlier run); bundled {len(report.bundled)} file(s) to upload in '
          f'{os.path.dirname(report.bundled[0]) if report.bundled else args.result_dir}')


if __name__ == '__main__':
    main()
