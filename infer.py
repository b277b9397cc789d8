"""Denoise images with Paddle Inference and the program written by export_model.py.

On CPU the predictor runs through oneDNN with IR optimisation (utils/paddle_inference.py).
Each image is reflect-padded to a multiple of 4 and given its own latent
z = sample_latent(..., np.random.default_rng(seed)), as predict.py draws it, so both
scripts give the same images for the same seed and weights. Results are written to
--result_dir under the input file names (same bit depth); with clean images the PSNR
per image is printed and saved with reprod_log.

  python infer.py --model-dir inference_model --noisy-dir noisy.png --clean-dir clean.png
"""
import argparse
import json
import os
import sys
import time
import warnings
from typing import Dict, Iterator, List

from utils.cli import image_files, matching_file, parse_seed, str2bool

CONTRACT_FILE = 'model_contract.json'
PAPER_CONTRACT = {'latent_channels': 48, 'channel_out': 3, 'size_multiple': 4}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model-dir', '--model_dir', dest='model_dir', default='inference_model',
                        help='folder written by export_model.py (default: inference_model)')
    parser.add_argument('--noisy-dir', '--noisy_dir', dest='noisy_dir', required=True,
                        help='a noisy image or a folder of them')
    parser.add_argument('--clean-dir', '--clean_dir', dest='clean_dir',
                        help='clean image(s) of the same names (a file when --noisy-dir is a file): '
                             'PSNR per image')
    parser.add_argument('--use-gpu', '--use_gpu', dest='use_gpu', type=str2bool, default=False,
                        metavar='True|False', help='run on the GPU (default: False)')
    parser.add_argument('--precision', choices=('fp32', 'bf16'), default='fp32',
                        help='bf16 runs the convolutions in bf16 through oneDNN on CPUs with '
                             'AVX512-BF16/AMX (default: fp32)')
    parser.add_argument('--cpu-threads', '--cpu_threads', dest='cpu_threads', type=int, default=None,
                        help='CPU math threads (default: all available cores)')
    parser.add_argument('--batch-size', '--batch_size', dest='batch_size', type=int, default=1,
                        help='images of equal size run together (default: 1)')
    parser.add_argument('--seed', type=parse_seed, default=0,
                        help="latent seed (predict.py with the same seed gives the same images); "
                             "'none' draws fresh z (default: 0)")
    parser.add_argument('--gaussian-scale', '--gaussian_scale', dest='gaussian_scale', type=float,
                        default=1.0, help='standard deviation of z (default: 1.0, as trained)')
    parser.add_argument('--result_dir', '--result-dir', dest='result_dir', default='results/infer',
                        help='output folder for the denoised images (default: results/infer)')
    parser.add_argument('--reprod-log', '--reprod_log', dest='reprod_log', default=None,
                        help='reprod_log file for the per-image PSNR '
                             '(default: RESULT_DIR/output_inference_engine.npy)')
    parser.add_argument('--benchmark', type=str2bool, default=False, metavar='True|False',
                        help='report preprocess/inference/postprocess times (auto_log when '
                             'installed) (default: False)')
    parser.add_argument('--overwrite', type=str2bool, nargs='?', const=True, default=False,
                        metavar='True|False', help='replace existing result files (default: False)')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    return args


def read_contract(model_dir: str) -> Dict[str, int]:
    """Latent shape of the exported model (model_contract.json; the paper's when absent)."""
    path = os.path.join(model_dir, CONTRACT_FILE)
    if not os.path.isfile(path):
        warnings.warn(f'{path} not found: assuming the paper model {PAPER_CONTRACT}')
        return dict(PAPER_CONTRACT)
    with open(path) as f:
        content = json.load(f)
    return {key: int(content[key]) for key in PAPER_CONTRACT}


def read_batches(files: List[str], batch_size: int, failures: List[str]) -> Iterator[list]:
    """Lists of (name, image, bit depth): consecutive images of equal size, at most
    ``batch_size`` at a time. Unreadable files are reported, added to ``failures`` and skipped."""
    from utils.image_io import ImageReadError, read_image_with_depth

    batch = []
    for path in files:
        name = os.path.basename(path)
        try:
            image, depth = read_image_with_depth(path)
        except ImageReadError as err:
            failures.append(f'{name}: {err}')
            print(f'FAILED {name}: {err}', file=sys.stderr)
            continue
        if batch and (len(batch) == batch_size or image.shape != batch[0][1].shape):
            yield batch
            batch = []
        batch.append((name, image, depth))
    if batch:
        yield batch


class StageTimer:
    """Preprocess / inference / postprocess times: through auto_log when installed, else our own."""

    STAGES = ('preprocess_time', 'inference_time', 'postprocess_time')

    def __init__(self, enabled: bool, args: argparse.Namespace):
        self.enabled = enabled
        self.autolog = None
        self.seconds = {stage: [] for stage in self.STAGES}
        self._stage = 0
        self._last = 0.0
        if not enabled:
            return
        try:
            import auto_log
        except ImportError:
            return
        from utils.paddle_inference import available_cpu_cores, onednn_available

        self.autolog = auto_log.AutoLogger(
            model_name='InvDN', model_precision=args.precision, batch_size=args.batch_size,
            data_shape='dynamic', save_path=None,
            inference_config={'runtime_device': 'gpu' if args.use_gpu else 'cpu', 'ir_optim': True,
                              'enable_tensorrt': False, 'precision': args.precision,
                              'enable_mkldnn': not args.use_gpu and onednn_available(),
                              'cpu_math_library_num_threads': args.cpu_threads or available_cpu_cores()},
            pids=os.getpid(), process_name=None, gpu_ids=0 if args.use_gpu else None,
            time_keys=list(self.STAGES), warmup=0)

    def start(self) -> None:
        if self.autolog:
            self.autolog.times.start()
        self._stage, self._last = 0, time.perf_counter()

    def stamp(self) -> None:
        """End the current stage."""
        now = time.perf_counter()
        self.seconds[self.STAGES[self._stage]].append(now - self._last)
        self._stage, self._last = self._stage + 1, now
        if self.autolog:
            if self._stage == len(self.STAGES):
                self.autolog.times.end(stamp=True)
            else:
                self.autolog.times.stamp()

    def report(self, num_images: int) -> None:
        if not self.enabled or not self.seconds['inference_time']:
            return
        if self.autolog:
            self.autolog.report()
            return
        total = sum(sum(values) for values in self.seconds.values())
        means = ', '.join(f'{stage}(ms): {1000 * sum(v) / len(v):.1f}' for stage, v in self.seconds.items())
        print(f'benchmark (per batch, without auto_log): {means}; '
              f'{num_images} images in {total:.2f} s ({total / num_images:.3f} s/image)')


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np

    from utils.denoise import pad_to_multiple, sample_latent
    from utils.image_io import ImageReadError, quantize, read_image, write_image
    from utils.metrics import calculate_psnr
    from utils.paddle_inference import InferenceModelError, create_predictor, run_predictor

    try:
        files = image_files(args.noisy_dir, '--noisy-dir')
        if args.clean_dir and not os.path.exists(args.clean_dir):
            raise FileNotFoundError(f'--clean-dir not found: {args.clean_dir}')
        contract = read_contract(args.model_dir)
        predictor = create_predictor(args.model_dir, use_gpu=args.use_gpu, precision=args.precision,
                                     cpu_threads=args.cpu_threads)
    except (InferenceModelError, FileNotFoundError, ValueError, RuntimeError) as err:
        sys.exit(f'error: {err}')
    names = [os.path.basename(f) for f in files]
    existing = [n for n in names if os.path.exists(os.path.join(args.result_dir, n))]
    if existing and not args.overwrite:
        sys.exit(f'error: {len(existing)} result file(s) already exist in {args.result_dir}, e.g. '
                 f'{existing[0]}; pass --overwrite True to replace them')

    multiple = contract['size_multiple']
    z_channels = contract['latent_channels'] - contract['channel_out']
    timer = StageTimer(args.benchmark, args)
    failures: List[str] = []
    psnrs: Dict[str, float] = {}
    written = 0

    warmed_up = not args.benchmark
    timer.start()
    for batch in read_batches(files, args.batch_size, failures):
        height, width = batch[0][1].shape[:2]
        noisy = pad_to_multiple(np.stack([image.transpose(2, 0, 1) for _, image, _ in batch]), multiple)
        z_shape = (1, z_channels, noisy.shape[2] // multiple, noisy.shape[3] // multiple)
        z = np.concatenate([sample_latent(z_shape, np.random.default_rng(args.seed), args.gaussian_scale)
                            for _ in batch])
        timer.stamp()
        if not warmed_up:  # the first run compiles oneDNN kernels: keep it out of the figures
            run_predictor(predictor, noisy, z)
            warmed_up = True
        denoised = run_predictor(predictor, noisy, z)[:, :, :height, :width].transpose(0, 2, 3, 1)
        timer.stamp()
        for (name, _, depth), out in zip(batch, denoised):
            write_image(os.path.join(args.result_dir, name), out, depth)
            written += 1
            if args.clean_dir:
                clean_path = matching_file(args.clean_dir, name)
                try:
                    clean = read_image(clean_path)
                    if clean.shape != out.shape:
                        raise ValueError(f'clean image {clean_path} is {clean.shape}, expected {out.shape}')
                except (ImageReadError, ValueError) as err:
                    failures.append(f'{name}: {err}')
                    print(f'FAILED {name}: {err}', file=sys.stderr)
                    continue
                psnrs[name] = calculate_psnr(quantize(out, 8), quantize(clean, 8))
                print(f'image_name: {name}, psnr: {psnrs[name]:.4f}')
        timer.stamp()
        timer.start()

    print(f'wrote {written} of {len(files)} denoised image(s) to {args.result_dir}')
    if psnrs:
        from reprod_log import ReprodLogger

        print(f'mean psnr: {np.mean(list(psnrs.values())):.4f}')
        log_path = args.reprod_log or os.path.join(args.result_dir, 'output_inference_engine.npy')
        logger = ReprodLogger()
        logger.add('psnr', np.array(list(psnrs.values())))
        logger.save(log_path)
        print(f'saved per-image PSNR with reprod_log to {log_path}')
    timer.report(written)
    if failures:
        sys.exit(f'error: {len(failures)} image(s) failed:\n  ' + '\n  '.join(failures))


if __name__ == '__main__':
    main()
