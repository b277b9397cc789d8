"""Denoise images with the model written by export_model.py: Paddle Inference, or with
--backend onnxruntime / openvino the ONNX model of export_model.py --format onnx.

The same routine as predict.py (padding, the seeded latent field, self-ensemble, Monte-Carlo
samples, tiling) with the exported model as its back end, so both scripts give the
same images for the same weights and seed. Paddle Inference runs on CPU through oneDNN
(--enable_mkldnn False: Paddle's native kernels), in bf16 on CPUs that have it; on GPU in
fp32 or fp16, optionally through TensorRT. With clean images the PSNR per image is printed
and saved with reprod_log; --benchmark prints the report of Paddle's auto_log (environment,
predictor settings, preprocess / inference / postprocess ms, ips, CPU memory).

  python infer.py --model_dir inference_model --input noisy.png --gt_dir clean.png
"""
import os

from apps import cli
from core.contract import PRECISIONS


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
                             'CPUs with AVX512-BF16/AMX; fp16 (paddle-inference) is for the GPU')
    parser.add_argument('--cpu_threads', '--cpu-threads', dest='cpu_threads', type=cli.positive_int,
                        default=None, help='CPU math threads (None: all available cores)')
    cli.add_bool_arg(parser, '--enable_mkldnn', '--enable-mkldnn', default=True,
                     help="CPU: run through oneDNN (MKL-DNN); False: Paddle's native CPU kernels, "
                          'several times slower')
    cli.add_bool_arg(parser, '--use_tensorrt', '--use-tensorrt', default=False,
                     help='GPU: run the graph through TensorRT subgraphs (inputs up to 2048 x 2048)')
    cli.add_denoise_args(parser, self_ensemble=False)
    parser.add_argument('--reprod_log', default=None,
                        help='reprod_log file for the per-image PSNR (None: '
                             'RESULT_DIR/output_inference_engine.npy)')
    cli.add_bool_arg(parser, '--benchmark', default=False,
                     help='report preprocess/inference/postprocess times')
    return parser.parse_args(argv)


def open_backend(args):
    """The runtime of --backend on the folder of --model_dir, for --device (TIPC's
    --use_gpu True on a machine without a GPU means the CPU, as for Paddle Inference)."""
    from apps.models import open_exported
    from deploy.paddle_inference import find_model_files
    from utils.device import gpu_available, select_device

    device = cli.device_from_args(args)
    if args.use_gpu and not gpu_available():
        # TIPC's template passes --use_gpu True on every machine; Paddle Inference's own
        # Config.enable_use_gpu falls back to the CPU on a CPU build, and so does infer.py,
        # saying so. (--device gpu stays an error.)
        print('--use_gpu True: this Paddle build sees no GPU; running on the CPU')
        device = 'cpu'
    try:
        find_model_files(args.model_dir)
        use_gpu = select_device(device) == 'gpu'
    except (OSError, ValueError, RuntimeError) as err:  # incl. InferenceModelError
        cli.fail(err)
    return open_exported(
        args.backend, args.model_dir, use_gpu, args.precision, args.cpu_threads,
        paddle_options={'enable_mkldnn': args.enable_mkldnn, 'use_tensorrt': args.use_tensorrt,
                        'max_batch_size': args.batch_size}), use_gpu


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    import numpy as np

    from apps.images import StageTimer, denoise_files, finish_image_job, plan_image_job
    from utils.cpu_speed import available_cpu_cores

    with plan_image_job(args, 'infer', {'model_dir': os.path.abspath(args.model_dir)},
                        demo_input=True) as job:
        backend, use_gpu = open_backend(args)
        try:
            job.options.check(backend.geometry.size_multiple)
        except ValueError as err:
            cli.fail(err)
        paddle_inference = backend.name == 'paddle-inference'
        timer = StageTimer(
            conf={'runtime_device': 'gpu' if use_gpu else 'cpu', 'backend': backend.name,
                  'ir_optim': paddle_inference, 'enable_memory_optim': paddle_inference,
                  'enable_tensorrt': args.use_tensorrt and use_gpu and paddle_inference,
                  'enable_mkldnn': args.enable_mkldnn and not use_gpu and paddle_inference,
                  'cpu_math_library_num_threads': args.cpu_threads or available_cpu_cores()},
            model={'model_name': 'InvDN', 'model_dir': args.model_dir, 'precision': args.precision},
            data={'batch_size': args.batch_size, 'input_shape': 'dynamic',
                  'mc_samples': args.mc_samples, 'self_ensemble': args.self_ensemble},
        ) if args.benchmark else None
        report = denoise_files(backend, job.files, args.result_dir, job.options, gt_dir=args.gt_dir,
                               batch_size=args.batch_size, save_comparison=args.save_comparison,
                               output_format=args.output_format, timer=timer, max_pixels=job.max_pixels)
    if report.scores:
        from reprod_log import ReprodLogger

        log_path = args.reprod_log or os.path.join(args.result_dir, 'output_inference_engine.npy')
        logger = ReprodLogger()
        logger.add('psnr', np.array([psnr for psnr, _ in report.scores.values()]))
        logger.save(log_path)
        print(f'saved per-image PSNR with reprod_log to {log_path}')
    if timer:
        print(timer.report(report.written))
    finish_image_job(report, job, args.result_dir)

if __name__ == '__main__':
    main()
