"""Denoise images with the model written by export_model.py: Paddle Inference, or with
--backend onnxruntime / openvino the ONNX model of export_model.py --format onnx.

The same routine as predict.py (padding, per-image seeded z, self-ensemble, Monte-Carlo
samples, tiling) with the exported model as its back end, so both scripts give the
same images for the same weights and seed. On CPU the predictor runs through oneDNN.
With clean images the PSNR per image is printed and saved with reprod_log; --benchmark
reports preprocess / inference / postprocess times in auto_log's layout.

  python infer.py --model_dir inference_model --input noisy.png --gt_dir clean.png
"""
import os

from engine import cli
from engine.contract import PRECISIONS


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    parser.add_argument('--model_dir', '--model-dir', dest='model_dir', default='inference_model',
                        help='folder written by export_model.py')
    cli.add_io_args(parser, result_dir='results/infer', demo_input=True)
    cli.add_image_output_args(parser)
    cli.add_device_args(parser)
    cli.add_backend_args(parser, exported=True)
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='bf16 (paddle-inference, openvino) runs the convolutions in bf16 on '
                             'CPUs with AVX512-BF16/AMX')
    parser.add_argument('--cpu_threads', '--cpu-threads', dest='cpu_threads', type=cli.positive_int,
                        default=None, help='CPU math threads (None: all available cores)')
    cli.add_denoise_args(parser, self_ensemble=False)
    parser.add_argument('--reprod_log', default=None,
                        help='reprod_log file for the per-image PSNR (None: '
                             'RESULT_DIR/output_inference_engine.npy)')
    cli.add_bool_arg(parser, '--benchmark', default=False,
                     help='report preprocess/inference/postprocess times')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    import numpy as np

    from engine.images import StageTimer, denoise_files
    from utils.device import select_device

    files, options = cli.plan_image_job(args)
    try:
        use_gpu = select_device(cli.device_from_args(args)) == 'gpu'
    except (OSError, ValueError, RuntimeError) as err:
        cli.fail(err)
    backend = cli.open_exported_backend_or_fail(args.backend, args.model_dir, use_gpu, args.precision,
                                                args.cpu_threads)
    timer = StageTimer({'model_name': 'InvDN', 'model_dir': args.model_dir, 'backend': backend.name,
                        'device': 'gpu' if use_gpu else 'cpu', 'precision': args.precision,
                        'cpu_threads': args.cpu_threads or 'all cores',
                        'batch_size': args.batch_size, 'mc_samples': args.mc_samples,
                        'self_ensemble': args.self_ensemble}) if args.benchmark else None

    report = denoise_files(backend, files, args.result_dir, options, gt_dir=args.gt_dir,
                           batch_size=args.batch_size, save_comparison=args.save_comparison,
                           output_format=args.output_format, timer=timer)
    if report.scores:
        from reprod_log import ReprodLogger

        log_path = args.reprod_log or os.path.join(args.result_dir, 'output_inference_engine.npy')
        logger = ReprodLogger()
        logger.add('psnr', np.array([psnr for psnr, _ in report.scores.values()]))
        logger.save(log_path)
        print(f'saved per-image PSNR with reprod_log to {log_path}')
    if timer:
        print(timer.report(report.written))
    cli.finish_image_job(report, len(files), args.result_dir)


if __name__ == '__main__':
    main()
