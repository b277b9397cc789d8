"""Export InvDN as a static program for Paddle Inference (infer.py) or your own deployment.

Writes DIR/model.json (or model.pdmodel) + DIR/model.pdiparams: the single-forward
variant with inputs ``noisy [N, 3, H, W]`` (float32 in [0, 1], H and W multiples of 4)
and ``z [K*N, 45, H/4, W/4]`` (standard normal times the Gaussian scale; K draws per
image), dynamic N, K, H and W. The saved program is loaded back and compared with the
dynamic model before DIR/model_contract.json, which describes the inputs and outputs, is
written (deploy/export.py). With --format onnx, DIR/model.onnx is written beside it
(paddle2onnx, attributes checked against the program and repaired, then verified with ONNX
Runtime and, when installed, OpenVINO; pip install -r requirements-deploy.txt).

  python export_model.py --weights W --save_inference_dir DIR [--format onnx]
"""
from apps import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    parser.add_argument('--save_inference_dir', '--save-inference-dir', dest='save_inference_dir',
                        default='inference_model',
                        help='output folder for the program, parameters and model_contract.json')
    parser.add_argument('--check_size', type=cli.positive_int, nargs=2, default=[64, 96],
                        metavar=('H', 'W'),
                        help='height and width of the random sample that checks the export '
                             '(multiples of 4; a real SIDD block of docs/demo is checked too)')
    parser.add_argument('--format', choices=('paddle', 'onnx'), default='paddle',
                        help='paddle: the program for Paddle Inference; onnx: also DIR/model.onnx '
                             'for ONNX Runtime / OpenVINO (infer.py --backend)')
    cli.add_bool_arg(parser, '--overwrite', default=False, help='replace an existing export in the folder')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Export; returns the max abs difference of each check."""
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from deploy.export import ExportError, export_onnx, export_program, exported_files
    from utils.device import on_gpu

    existing = exported_files(args.save_inference_dir)
    if existing and not args.overwrite:
        cli.fail(f'{", ".join(existing)} already exist(s); pass --overwrite to replace')
    if any(size % 4 for size in args.check_size):
        cli.fail(f'--check_size must be multiples of 4, got {args.check_size[0]} {args.check_size[1]}')
    from apps.models import load_model

    model = load_model(args)
    try:
        report = export_program(model, args.save_inference_dir, tuple(args.check_size), args.weights,
                                use_gpu=on_gpu())
        differences = dict(report.differences)
        if args.format == 'onnx':
            onnx_report = export_onnx(report)
            differences.update(onnx_report.differences)
    except (ExportError, ImportError, OSError, ValueError, RuntimeError) as err:
        cli.fail(err)
    from deploy.export import LIMITS

    for name, diff in differences.items():
        limit, unit = LIMITS[name]
        print(f'{name} vs dynamic model: {diff:.3g} {unit} (limit {limit:g})')
    if args.format == 'onnx':
        checked = ', '.join(f'{name} ({count})' for name, count in onnx_report.checked.items())
        print(f'ONNX attributes checked against the program: {checked}')
        for what, count in onnx_report.repairs.items():
            print(f'repaired in the ONNX graph: {what}, {count} node(s)')
        print(f'wrote {onnx_report.path}')
    print(f'exported to {args.save_inference_dir} with {report.contract_path}')
    return differences


if __name__ == '__main__':
    main()
