"""Export InvDN as a static program for Paddle Inference (infer.py).

The single-forward variant ``InvNetOneForward`` is saved with ``paddle.jit.save`` as
DIR/model.json (or model.pdmodel) + DIR/model.pdiparams, with inputs
``noisy [N, 3, H, W]`` (float32 in [0, 1], H and W multiples of 4) and
``z [N, 45, H/4, W/4]`` (standard normal, times the Gaussian scale) and dynamic N, H, W.
The saved program is loaded back and compared with the dynamic model before finishing,
and DIR/model_contract.json describes the inputs and outputs.

  python export_model.py --weights W --save-inference-dir DIR
"""
import argparse
import json
import os
import sys

from utils.cli import add_bool_arg, add_model_args, model_from_args
from utils.cpu_speed import configure_cpu

MAX_DIFF = 1e-4
CONTRACT_FILE = 'model_contract.json'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument('--save-inference-dir', '--save_inference_dir', dest='save_inference_dir',
                        default='inference_model',
                        help='output folder for the program, parameters and model_contract.json '
                             '(default: inference_model)')
    parser.add_argument('--check-size', '--check_size', dest='check_size', type=int, nargs=2,
                        default=[64, 96], metavar=('H', 'W'),
                        help='height and width of the random sample used to check the export '
                             '(multiples of 4; default: 64 96)')
    add_bool_arg(parser, '--overwrite', default=False, help='replace an existing export in the folder')
    return parser.parse_args(argv)


def contract(model, max_diff: float, weights: str, output_names: list) -> dict:
    """Inputs/outputs of the exported program, for deployment code."""
    z_channels = model.latent_channels - model.channel_out
    multiple = model.size_multiple
    return {
        'inputs': [
            {'name': 'noisy', 'shape': [-1, model.channel_in, -1, -1], 'dtype': 'float32',
             'layout': 'NCHW, RGB', 'value_range': [0.0, 1.0],
             'note': f'H and W must be multiples of {multiple}: reflect-pad and crop the output back'},
            {'name': 'z', 'shape': [-1, z_channels, -1, -1], 'dtype': 'float32',
             'distribution': 'standard normal times gaussian_scale (1.0 as trained), '
                             'i.i.d. per element',
             'note': f'spatial size H/{multiple} x W/{multiple}; same N as noisy'},
        ],
        'outputs': [
            {'name': output_names[0], 'shape': [-1, model.channel_in, -1, -1], 'dtype': 'float32',
             'layout': 'NCHW, RGB', 'value_range': 'about [0, 1]; clip to [0, 1] before quantising'},
        ],
        'size_multiple': multiple,
        'latent_channels': model.latent_channels,
        'channel_out': model.channel_out,
        'weights': os.path.abspath(weights),
        'export_check_max_abs_diff': max_diff,
    }


def main(argv=None) -> dict:
    """Export; returns the max abs difference of each check."""
    args = parse_args(argv)
    configure_cpu()  # before the first Paddle op
    import numpy as np
    import paddle
    from paddle.static import InputSpec

    from networks.InvDN_model_oneForward import InvNetOneForward
    from utils.denoise import sample_latent
    from utils.paddle_inference import create_predictor, run_predictor

    prefix = os.path.join(args.save_inference_dir, 'model')
    existing = [prefix + ext for ext in ('.json', '.pdmodel', '.pdiparams') if os.path.exists(prefix + ext)]
    if existing and not args.overwrite:
        sys.exit(f'error: {", ".join(existing)} already exist(s); pass --overwrite to replace')
    model = model_from_args(args, network_class=InvNetOneForward)
    height, width = args.check_size
    if height % model.size_multiple or width % model.size_multiple:
        sys.exit(f'error: --check-size must be multiples of {model.size_multiple}, got {height} {width}')

    z_channels = model.latent_channels - model.channel_out
    rng = np.random.default_rng(0)
    noisy = rng.random((2, model.channel_in, height, width), dtype=np.float32)
    z = sample_latent((2, z_channels, height // model.size_multiple, width // model.size_multiple), rng)
    with paddle.no_grad():
        expected = model(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()

    spec = [InputSpec([None, model.channel_in, None, None], 'float32', 'noisy'),
            InputSpec([None, z_channels, None, None], 'float32', 'z')]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec, full_graph=True), prefix)

    # The saved program, loaded back and through Paddle Inference (the deployment path),
    # must reproduce the dynamic model on a sample (batch of 2, non-square).
    loaded = paddle.jit.load(prefix)
    loaded.eval()
    with paddle.no_grad():
        outputs = {'paddle.jit.load': loaded(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()}
    predictor = create_predictor(args.save_inference_dir, use_gpu=paddle.is_compiled_with_cuda()
                                 and paddle.get_device().startswith('gpu'))
    outputs['Paddle Inference'] = run_predictor(predictor, noisy, z)
    diffs = {name: float(np.abs(output - expected).max()) for name, output in outputs.items()}
    for name, diff in diffs.items():
        print(f'{name} vs dynamic model on a {height}x{width} sample: max abs diff {diff:.3g}')
    max_diff = max(diffs.values())
    if not all(diff <= MAX_DIFF for diff in diffs.values()):  # also catches NaN
        sys.exit(f'error: the exported program differs from the dynamic model by {max_diff:.3g} '
                 f'(> {MAX_DIFF}); do not deploy {args.save_inference_dir}')
    with open(os.path.join(args.save_inference_dir, CONTRACT_FILE), 'w') as f:
        json.dump(contract(model, max_diff, args.weights, predictor.get_output_names()), f, indent=2)
    print(f'exported to {prefix}.* with {CONTRACT_FILE}')
    return diffs


if __name__ == '__main__':
    main()
