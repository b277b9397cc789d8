"""Generate new noisy images from noisy ones by changing InvDN's noisy latent (the paper's
third claim): the forward pass splits an image into its clean low-resolution image and the
latent z that holds its noise; z is changed (--mode, --epsilon) and the reverse pass makes a
new noisy image. --epsilon 0 gives the input back. How close the noise is to real noise,
and how new: docs/noise_generation.md.

Writes <stem>_<k>.png for k = 0 .. --num_samples - 1 in each input's bit depth. With --gt_dir,
each sample's noise is scored against the real noise (AKLD, and its correlation with the
real noise: 1 means a copy). An unreadable image is reported by name and the others are
still processed; the exit status is then 1.

  python generate_noise.py --input noisy.png --result_dir out
  python generate_noise.py --data_path SIDD_mini/val_mini --mode resample --epsilon 1
"""
from apps import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    cli.add_io_args(parser, result_dir='results/generate_noise', batch_size=False,
                    scores="each sample's AKLD and noise correlation against the real noise")
    cli.add_noise_args(parser)
    cli.add_tiling_args(parser)
    cli.add_resume_args(parser)
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from apps import models
    from apps.images import finish_image_job, plan_image_job
    from apps.noise import generate_files, sample_outputs, score_lines
    from core.denoise import DygraphBackend
    from networks import InvNet

    with plan_image_job(args, 'generate_noise', {'weights': cli.find_weights(args.weights)[0]},
                        options=cli.noise_options(args), draws_per_image=args.num_samples,
                        outputs_of=lambda path: sample_outputs(path, args.result_dir,
                                                               args.num_samples)) as job:
        model = models.load_model(args, network_class=InvNet, options=job.options)
        report = generate_files(DygraphBackend(model), job.files, args.result_dir, job.options,
                                args.num_samples, gt_dir=args.gt_dir, max_pixels=job.max_pixels)
    finish_image_job(report, job, args.result_dir, done='generated noisy versions of',
                     score_lines=score_lines, scored='sample(s)')


if __name__ == '__main__':
    main()
