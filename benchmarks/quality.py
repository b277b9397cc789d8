"""What a trained model's figures are: ensembles, back ends, bf16 and tiling, on real blocks.

    python -m benchmarks.quality --val_dir ../shared/SIDD_mini/val_mini [--weights W] [--json F]

Every row runs the one denoise routine (core.denoise) on the noisy/GT blocks of --val_dir
and scores uint8-quantised outputs as the SIDD benchmark does:
- evaluation settings: one z, forward_x8 (8 flips, one z each), MC 16 (16 z), and
  Multi_forward_x8 (16 z for each of the 8 flips); the gain of each over one z;
- back ends against dygraph, same seed: the exported program through Paddle Inference fp32,
  and the repaired ONNX model through ONNX Runtime and OpenVINO fp32 when installed (largest
  difference in grey levels, PSNR against dygraph); bf16 (Paddle Inference, OpenVINO) where
  the CPU has it (PSNR against the fp32 output, and the change of PSNR against GT).
Tiled against whole-image results: benchmarks/photos.py.
"""
import tempfile
import time
from typing import Dict, List

import numpy as np

from apps import cli
from benchmarks.report import write_json


SETTINGS = ('one_z', 'forward_x8', 'mc_16', 'multi_forward_x8')


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    parser.add_argument('--val_dir', required=True,
                        help='folder with GT/ and Noisy/ blocks, e.g. ../shared/SIDD_mini/val_mini')
    parser.add_argument('--seed', type=cli.parse_seed, default=0,
                        help="latent seed of every row ('none': fresh draws)")
    parser.add_argument('--settings', nargs='+', choices=SETTINGS, default=list(SETTINGS),
                        help='evaluation settings to run (multi_forward_x8 takes minutes)')
    parser.add_argument('--json', default=None, help='also write the figures to this JSON file')
    return parser.parse_args(argv)


def psnr_of(denoised: np.ndarray, reference: np.ndarray) -> float:
    from utils.image_io import quantize
    from utils.metrics import calculate_psnr

    return calculate_psnr(quantize(denoised, 8), quantize(reference, 8))


def grey_levels(a: np.ndarray, b: np.ndarray) -> int:
    from utils.image_io import quantize

    return int(np.abs(quantize(a, 8).astype(int) - quantize(b, 8).astype(int)).max())


def main(argv=None) -> Dict[str, object]:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from dataloaders import folder_pairs
    from apps.models import load_model
    from core.denoise import DenoiseOptions, DygraphBackend, denoise_array
    from core.evaluate import score
    from deploy.export import export_onnx, export_program
    from deploy.paddle_inference import PaddleInferenceBackend, bf16_supported
    from deploy.runtimes import ONNX_RUNTIMES, installed, open_runtime

    model = load_model(args)
    pairs = folder_pairs(args.val_dir)
    noisy = np.stack([pair[1] for pair in pairs])
    gt = np.stack([pair[2] for pair in pairs])
    figures: Dict[str, object] = {'weights': args.weights, 'val_dir': args.val_dir, 'blocks': len(pairs)}

    def scores(outputs: np.ndarray) -> List[float]:
        values = np.array([score(out, ref) for out, ref in zip(outputs, gt)])
        return [float(values[:, 0].mean()), float(values[:, 1].mean())]

    figures['noisy_input'] = scores(noisy)
    with tempfile.TemporaryDirectory(prefix='invdn_quality_') as model_dir:
        report = export_program(model, model_dir)
        fast = open_runtime('paddle-inference', model_dir)
        dygraph = DygraphBackend(model)
        onnx_backends = {}
        if installed('onnxruntime'):
            export_onnx(report)
            onnx_backends = {name: open_runtime(name, model_dir) for name in ONNX_RUNTIMES
                             if installed(name)}
        settings = {'one_z': DenoiseOptions(seed=args.seed),
                    'forward_x8': DenoiseOptions(self_ensemble=True, seed=args.seed),
                    'mc_16': DenoiseOptions(mc_samples=16, seed=args.seed),
                    'multi_forward_x8': DenoiseOptions(self_ensemble=True, mc_samples=16, seed=args.seed)}
        outputs = {}
        for name, options in settings.items():
            if name not in args.settings and name != 'one_z':
                continue
            start = time.perf_counter()
            outputs[name] = denoise_array(fast, noisy, options)
            figures[name] = scores(outputs[name]) + [time.perf_counter() - start]
            print(f'{name}: PSNR {figures[name][0]:.2f} dB, SSIM {figures[name][1]:.4f} '
                  f'({figures[name][2]:.0f} s)', flush=True)

        reference = denoise_array(dygraph, noisy, settings['one_z'])
        figures['dygraph_one_z'] = scores(reference)
        figures['paddle_inference_fp32_vs_dygraph'] = {
            'max_abs_diff': float(np.abs(outputs['one_z'] - reference).max()),
            'max_grey_levels': grey_levels(outputs['one_z'], reference),
            'psnr_db': float(np.mean([psnr_of(o, r) for o, r in zip(outputs['one_z'], reference)]))}
        fp32_outputs = {'paddle_inference': outputs['one_z']}
        for name, backend in onnx_backends.items():
            restored = denoise_array(backend, noisy, settings['one_z'])
            fp32_outputs[name] = restored
            figures[f'{name}_fp32_vs_dygraph'] = {
                'max_abs_diff': float(np.abs(restored - reference).max()),
                'max_grey_levels': grey_levels(restored, reference),
                'psnr_db': float(np.mean([psnr_of(o, r) for o, r in zip(restored, reference)])),
                'psnr_vs_gt': scores(restored)[0]}
        bf16_backends = {}
        if bf16_supported():
            bf16_backends['paddle_inference'] = PaddleInferenceBackend(model_dir, precision='bf16')
        else:
            figures['paddle_inference_bf16'] = 'skipped: this CPU has no AVX512-BF16/AMX'
        if 'openvino' in onnx_backends:
            from deploy.openvino_runtime import openvino_bf16_supported

            if openvino_bf16_supported():
                bf16_backends['openvino'] = open_runtime('openvino', model_dir, precision='bf16')
            else:
                figures['openvino_bf16'] = 'skipped: this CPU has no AVX512-BF16/AMX'
        for name, backend in bf16_backends.items():
            bf16 = denoise_array(backend, noisy, settings['one_z'])
            fp32 = fp32_outputs[name]
            fp32_psnr = scores(fp32)[0]
            figures[f'{name}_bf16'] = {
                'psnr_vs_fp32_db': float(np.mean([psnr_of(b, f) for b, f in zip(bf16, fp32)])),
                'max_grey_levels_vs_fp32': grey_levels(bf16, fp32),
                'psnr_vs_gt_fp32': fp32_psnr, 'psnr_vs_gt_bf16': scores(bf16)[0],
                'psnr_vs_gt_change_db': scores(bf16)[0] - fp32_psnr}


    print(f'\nweights {args.weights}, {len(pairs)} blocks of {args.val_dir}, seed {args.seed}\n')
    print('| setting | PSNR (dB) | SSIM | gain over one z (dB) | seconds |')
    print('| --- | --- | --- | --- | --- |')
    print(f'| noisy input | {figures["noisy_input"][0]:.2f} | {figures["noisy_input"][1]:.4f} | | |')
    for name in settings:
        if name not in figures:
            continue
        psnr, ssim, seconds = figures[name]
        print(f'| {name} | {psnr:.2f} | {ssim:.4f} | {psnr - figures["one_z"][0]:+.2f} | {seconds:.0f} |')
    pi = figures['paddle_inference_fp32_vs_dygraph']
    print(f'\nPaddle Inference fp32 vs dygraph: max abs diff {pi["max_abs_diff"]:.2g}, at most '
          f'{pi["max_grey_levels"]} grey level(s), PSNR {pi["psnr_db"]:.1f} dB')
    for name in onnx_backends:
        row = figures[f'{name}_fp32_vs_dygraph']
        print(f'{name} fp32 vs dygraph: max abs diff {row["max_abs_diff"]:.2g}, at most '
              f'{row["max_grey_levels"]} grey level(s), PSNR {row["psnr_db"]:.1f} dB')
    for name in ('paddle_inference', 'openvino'):
        bf16 = figures.get(f'{name}_bf16')
        if isinstance(bf16, dict):
            print(f'{name} bf16: PSNR vs its fp32 output {bf16["psnr_vs_fp32_db"]:.1f} dB (at most '
                  f'{bf16["max_grey_levels_vs_fp32"]} grey levels), PSNR vs GT '
                  f'{bf16["psnr_vs_gt_fp32"]:.3f} -> {bf16["psnr_vs_gt_bf16"]:.3f} dB '
                  f'({bf16["psnr_vs_gt_change_db"]:+.3f})')
        elif bf16:
            print(f'{name} bf16: {bf16}')
    write_json(args.json, figures)
    return figures


if __name__ == '__main__':
    main()
