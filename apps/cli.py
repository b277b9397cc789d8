"""The command-line dialect of every script: one spelling per thing, shown defaults.

Spellings: ``--input`` (an image or a folder), ``--gt_dir``, ``--result_dir``,
``--batch_size``, ``--device``, ``--seed``, ``--weights``, ``--overwrite``, ``--verbose``;
booleans accept ``--flag``, ``--flag True`` and ``--flag False``. The spellings of Paddle's
TIPC template are aliases where TIPC passes them (``--use-gpu``/``--use_gpu``,
``--model-dir``, ``--batch-size``, ``--save-inference-dir``). Training scripts take the
PaddleDetection-style ``-c FILE -o key=value``.

Nothing here imports Paddle, so ``--help`` answers at once; ``prepare_process`` sets the
process up before the first Paddle import.
"""
import argparse
import math
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any, List, NoReturn, Optional, Sequence, Tuple, Union

from config import SCHEMA, Config, load_config, paper_default
from core.contract import BACKENDS, NOISE_MODES, PRECISIONS
from core.tiling import AUTO_TILE, DEFAULT_MAX_MEMORY, DEFAULT_OVERLAP, MIN_TILE
from utils.console import quiet_paddle
from utils.cpu_speed import configure_cpu

if TYPE_CHECKING:
    from core.denoise import DenoiseOptions
    from core.noise_generation import NoiseOptions

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Weights used when --weights is not given, in this order (paths in the repository): the
# official weights, then the earlier Paddle reproduction's trained model (its default), then
# the demo model shipped here.
DEFAULT_WEIGHTS = (('pretrained/InvDN_ResUnit_x4.pdparams', 'the converted official weights'),
                   ('pretrained/model_best.pdparams', 'a trained model, the earlier Paddle '
                    "reproduction's default weights file"),
                   ('pretrained/InvDN_SIDD_mini_demo.pdparams',
                    'the demo model trained on 10 SIDD_mini scenes: for SIDD-like noisy images, it '
                    'damages ordinary photos, docs/demo_model.md#limits'))
DEVICES = SCHEMA['device'].choices


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and ends every flag's help with its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ''
        if '(default:' in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f'{text} (required)'
        default = action.default
        if isinstance(default, (list, tuple)):
            default = ' '.join(str(v) for v in default)
        return f'{text} (default: {default})'


def make_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the project's help layout and ``--verbose``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_bool_arg(parser, '--verbose', default=False,
                 help="show Paddle's own notices (ccache, glog) on the console")
    return parser


def fail(message: Any) -> NoReturn:
    """Stop with one line ``error: ...`` and exit status 1."""
    sys.exit(f'error: {message}')


def prepare_process(verbose: bool = False) -> None:
    """Before the first Paddle op: quiet Paddle's notices, fast CPU math (utils.cpu_speed)."""
    quiet_paddle(verbose)
    configure_cpu()


def str2bool(value: str) -> bool:
    """'True'/'False' (and yes/no, 1/0) as TIPC passes booleans."""
    text = str(value).strip().lower()
    if text in ('true', 't', 'yes', 'y', '1'):
        return True
    if text in ('false', 'f', 'no', 'n', '0'):
        return False
    raise argparse.ArgumentTypeError(f'expected True or False, got {value!r}')


def add_bool_arg(parser: argparse.ArgumentParser, *names: str, default: bool, help: str) -> None:
    """A flag usable bare (``--flag``) or with a value (``--flag True|False``)."""
    parser.add_argument(*names, type=str2bool, nargs='?', const=True, default=default,
                        metavar='True|False', help=help)


def parse_seed(value: str) -> Optional[int]:
    """An integer seed, or 'none' for a fresh random draw on every run."""
    if str(value).lower() == 'none':
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer or 'none', got {value!r}") from None


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {value}')
    return number


# ---- groups of flags

DEMO_INPUT = os.path.join('docs', 'demo', 'Noisy')
DEMO_GT = os.path.join('docs', 'demo', 'GT')


def add_io_args(parser: argparse.ArgumentParser, result_dir: str, demo_input: bool = False,
                batch_size: bool = True, scores: str = 'PSNR/SSIM per image') -> None:
    """--input, --gt_dir, --data_path, --result_dir, --overwrite and (with ``batch_size``)
    --batch_size, with the earlier Paddle reproduction's spellings as aliases. With
    ``demo_input`` the input may be left out: the SIDD block shipped in docs/demo, with its
    GT (apps.images.plan_image_job). ``scores``: what --gt_dir gives."""
    parser.add_argument('--input', '--noisy-dir', '--noisy_dir', dest='input', default=None,
                        help='a noisy image, or a folder of them (--noisy-dir: the earlier '
                             'reproduction\'s spelling)' + (
                                 f'; None: the real SIDD block of {DEMO_INPUT}, scored against '
                                 f'{DEMO_GT}' if demo_input else '; required unless --data_path'))
    parser.add_argument('--gt_dir', '--clean-dir', '--clean_dir', dest='gt_dir', default=None,
                        help=f'clean images of the same names (a file when --input is a file): '
                             f'{scores} (--clean-dir: the earlier reproduction\'s spelling)')
    parser.add_argument('--data_path', '--data-path', dest='data_path', default=None,
                        help='a folder holding Noisy/ and GT/ (as SIDD_mini/val_mini): the same as '
                             '--input DIR/Noisy --gt_dir DIR/GT (the earlier reproduction\'s flag)')
    add_result_args(parser, result_dir, 'output folder')
    if batch_size:
        add_batch_size_arg(parser, 'images of equal size denoised together; results do not depend on it')


def add_result_args(parser: argparse.ArgumentParser, result_dir: str, help: str) -> None:
    """--result_dir and --overwrite."""
    parser.add_argument('--result_dir', default=result_dir, help=help)
    add_bool_arg(parser, '--overwrite', default=False, help='replace existing result files')


def add_batch_size_arg(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument('--batch_size', '--batch-size', dest='batch_size', type=positive_int,
                        default=1, help=help)


def add_image_output_args(parser: argparse.ArgumentParser) -> None:
    """--save_comparison, --output_format, --resume, --max_megapixels (the image loop of
    apps.images)."""
    add_bool_arg(parser, '--save_comparison', default=False,
                 help='also write noisy | denoised | GT side by side to result_dir/comparison')
    parser.add_argument('--output_format', choices=('lossless', 'same'), default='lossless',
                        help="lossless: JPEG inputs are written as PNG; same: keep each input's format")
    add_resume_args(parser)


def add_resume_args(parser: argparse.ArgumentParser) -> None:
    """--resume and --max_megapixels (apps.images.plan_image_job)."""
    add_bool_arg(parser, '--resume', default=False,
                 help='continue an interrupted run into the same --result_dir with the same '
                      'settings: images whose results are complete are skipped')
    add_pixel_limit_arg(parser)


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """--device, and TIPC's --use_gpu/--use-gpu as an alias."""
    parser.add_argument('--device', choices=DEVICES, default='auto',
                        help='auto: the GPU when Paddle has one, else the CPU')
    parser.add_argument('--use_gpu', '--use-gpu', dest='use_gpu', type=str2bool, nargs='?',
                        const=True, default=None, metavar='True|False', help='TIPC spelling: True means --device gpu, '
                                                   'False --device cpu')


def device_from_args(args: argparse.Namespace) -> str:
    return args.device if args.use_gpu is None else ('gpu' if args.use_gpu else 'cpu')


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--weights, --block_num, --scale."""
    parser.add_argument('--weights', default=None,
                        help='model weights (.pdparams: converted official weights or a training '
                             'checkpoint); None: the first present of '
                             + ', '.join(path for path, _ in DEFAULT_WEIGHTS)
                             + ' (the last is the shipped demo model)')
    parser.add_argument('--block_num', type=int, nargs='+', default=None,
                        help='coupling blocks per downsampling stage (None: from the checkpoint '
                             "config if saved by our trainer, else the paper's)")
    parser.add_argument('--scale', type=int, default=None,
                        help="total downsampling factor, a power of 2 (None: checkpoint config, "
                             "else the paper's)")


def add_backend_args(parser: argparse.ArgumentParser, exported: bool = False, photos: bool = False) -> None:
    """--backend: what runs the network for the denoise routine; with ``exported`` (infer.py)
    the back ends of an exported model, otherwise also dygraph and --precision (by default
    fp32, as evaluations report; with ``photos`` (predict.py) auto, the fastest)."""
    choices = [name for name in BACKENDS if not (exported and name == 'dygraph')]
    where = ('the program of --model_dir' if exported else
             'export the model (verified, once per weights file: deploy.cache) and run the program')
    parser.add_argument('--backend', default='auto', choices=choices,
                        help=f'paddle-inference: {where} with Paddle Inference (oneDNN on CPU); '
                             'onnxruntime, openvino: the same model as ONNX (export_model.py --format '
                             'onnx, attributes repaired and verified; pip install -r '
                             'requirements-deploy.txt)' + ('' if exported else '; dygraph: the Paddle '
                                                           'model directly') +
                             '; auto: the fastest installed for the device (CPU: openvino, '
                             'onnxruntime, paddle-inference in that order; GPU: '
                             + ('paddle-inference' if exported else 'dygraph') + ')'
                             + (', the ONNX ones only when the folder has model.onnx' if exported else '')
                             + '; the choice is printed')
    if not exported:
        parser.add_argument('--precision', choices=('auto',) + PRECISIONS,
                            default='auto' if photos else 'fp32',
                            help='bf16: OpenVINO (inference precision hint) or Paddle Inference on '
                                 'CPUs with AVX512-BF16/AMX, refused elsewhere; auto: for a job of '
                                 '1 MP or more bf16 with OpenVINO where the CPU has it (results '
                                 'within 3 grey levels of fp32: docs/photos.md#back-ends), else fp32')


def parse_tile(value: str) -> Union[int, str, None]:
    """--tile: 'auto', 0 (None: the whole image) or a tile size in pixels."""
    if str(value).lower() == 'auto':
        return 'auto'
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 0 or a tile size in pixels, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto', 0 or a tile size in pixels, got {value}")
    return number or None


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {value}')
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f'expected a positive number, got {value}')
    return number


def add_denoise_args(parser: argparse.ArgumentParser, self_ensemble: bool, tiling: bool = True) -> None:
    """The options of core.denoise.DenoiseOptions."""
    parser.add_argument('--mc_samples', type=positive_int, default=1,
                        help='latent draws averaged per input and ensemble variant (official '
                             'MC_test: 16)')
    add_bool_arg(parser, '--self_ensemble', default=self_ensemble,
                 help='average over the 8 flips/transposes, one z each: official forward_x8 '
                      '(with --mc_samples 16: official Multi_forward_x8, 16x slower)')
    parser.add_argument('--gaussian_scale', type=float, default=paper_default('train.gaussian_scale'),
                        help='standard deviation of the latent z, finite and >= 0 (1.0 as trained)')
    parser.add_argument('--seed', type=parse_seed, default=0,
                        help="latent seed (>= 0): the same seed gives the same images on every "
                             "back end, tiled or whole; 'none' draws fresh z")
    if tiling:
        add_tiling_args(parser)


def add_tiling_args(parser: argparse.ArgumentParser) -> None:
    """--tile, --tile_overlap, --max_memory (core.tiling)."""
    parser.add_argument('--tile', type=parse_tile, default='auto',
                        help=f'auto: the whole image when it is at most {AUTO_TILE} x {AUTO_TILE} and '
                             f'fits --max_memory, else tiles of at most {AUTO_TILE} that fit; 0: always '
                             'the whole image; N: tiles of at most N x N '
                             f"pixels (>= {MIN_TILE}, a multiple of the network's downsampling "
                             'factor). Tiles share the image\'s latent field and are blended, so '
                             'the result matches the whole image\'s (docs/photos.md#tiling)')
    parser.add_argument('--tile_overlap', type=non_negative_int, default=DEFAULT_OVERLAP,
                        help='least overlap of neighbouring tiles in pixels, at most half the tile')
    parser.add_argument('--max_memory', type=positive_float, default=DEFAULT_MAX_MEMORY / 2 ** 30,
                        help='GiB the network may use on one tile with --tile auto (the photo '
                             'itself adds about 20 bytes per pixel)')


def denoise_options(args: argparse.Namespace) -> 'DenoiseOptions':
    """core.denoise.DenoiseOptions from the flags of ``add_denoise_args``, checked as far as
    they can be without the model (the tile against its downsampling factor: apps.models)."""
    from core.denoise import DenoiseOptions

    options = DenoiseOptions(mc_samples=args.mc_samples, self_ensemble=args.self_ensemble,
                             gaussian_scale=args.gaussian_scale, seed=args.seed,
                             tile=getattr(args, 'tile', None),
                             tile_overlap=getattr(args, 'tile_overlap', DEFAULT_OVERLAP),
                             max_memory=int(getattr(args, 'max_memory', DEFAULT_MAX_MEMORY / 2 ** 30) * 2 ** 30))
    try:
        options.check()
    except ValueError as err:
        fail(err)
    return options


def add_noise_args(parser: argparse.ArgumentParser) -> None:
    """The options of core.noise_generation.NoiseOptions besides tiling, and --num_samples."""
    parser.add_argument('--mode', choices=NOISE_MODES, default='perturb',
                        help='how the noisy latent z is changed: perturb: z + epsilon * N(0, I); '
                             "resample: a fresh draw with z's channel statistics, blended with z "
                             "(epsilon 1: fully new); residual: the latent of the denoised image "
                             "plus the noise's latent residual, its draw new by epsilon "
                             '(docs/noise_generation.md)')
    parser.add_argument('--epsilon', type=float, default=0.1,
                        help='strength of the change: >= 0 for perturb, in [0, 1] for the others; '
                             '0 gives the input back')
    parser.add_argument('--num_samples', '--num-samples', dest='num_samples', type=positive_int,
                        default=4, help='noisy images generated per input: <stem>_<k>.png, k = 0 ..')
    parser.add_argument('--seed', type=non_negative_int, default=0,
                        help='seed of the draws: the same seed gives the same images, tiled or whole')


def noise_options(args: argparse.Namespace) -> 'NoiseOptions':
    """core.noise_generation.NoiseOptions from the flags of ``add_noise_args`` and
    ``add_tiling_args``, checked as far as they can be without the model."""
    from core.noise_generation import NoiseOptions

    options = NoiseOptions(mode=args.mode, epsilon=args.epsilon, seed=args.seed, tile=args.tile,
                           tile_overlap=args.tile_overlap, max_memory=int(args.max_memory * 2 ** 30))
    try:
        options.check()
    except ValueError as err:
        fail(err)
    return options


def add_pixel_limit_arg(parser: argparse.ArgumentParser) -> None:
    """--max_megapixels: images declaring more pixels are refused by name before decoding."""
    from utils.image_io import DEFAULT_MAX_PIXELS

    parser.add_argument('--max_megapixels', type=positive_float, default=DEFAULT_MAX_PIXELS / 1e6,
                        help='refuse images above this size (read from the header, before decoding); '
                             'the other images are still processed')


def max_pixels(args: argparse.Namespace) -> int:
    """The pixel limit of ``add_pixel_limit_arg``."""
    from utils.image_io import DEFAULT_MAX_PIXELS

    return int(getattr(args, 'max_megapixels', DEFAULT_MAX_PIXELS / 1e6) * 1e6)


def add_num_workers_arg(parser: argparse.ArgumentParser) -> None:
    """--num_workers for utils.parallel.map_with_progress."""
    parser.add_argument('--num_workers', type=int, default=os.cpu_count() or 1,
                        help='parallel processes (0 or 1: run in this process) (default: all cores)')


def add_config_args(parser: argparse.ArgumentParser, default_config: str) -> None:
    """``-c/--config FILE`` and ``-o/--opt key.sub=value ...`` (the PaddleDetection convention)."""
    parser.add_argument('-c', '--config', default=default_config,
                        help='YAML configuration file (a relative path not found here is looked '
                             'up in the repository)')
    parser.add_argument('-o', '--opt', nargs='+', action='extend', default=[], metavar='KEY=VALUE',
                        help='override configuration keys, values parsed as YAML, '
                             'e.g. -o train.niter=1000 network_G.block_num=[1,1]')


def config_from_args(args: argparse.Namespace) -> Config:
    path = args.config
    if path and not os.path.isabs(path) and not os.path.isfile(path) \
            and os.path.isfile(os.path.join(REPO_ROOT, path)):
        path = os.path.join(REPO_ROOT, path)
    return load_config(path, args.opt)


# ---- checks made before anything is loaded

def image_files(path: str, flag: str = '--input') -> List[str]:
    """The images named by a command-line path: one image file, or those in a folder."""
    from utils.image_io import is_image_file, list_images

    if os.path.isdir(path):
        files = list_images(path)
        if not files:
            fail(f'{flag}: no PNG/JPEG/TIFF/BMP images in {path}')
        return files
    if not os.path.isfile(path):
        fail(f'{flag}: {path} not found')
    if not is_image_file(path):
        fail(f'{flag}: {path} is not an image file (expected .png, .jpg, .jpeg, .tif, .tiff or .bmp)')
    return [path]


def check_exists(path: Optional[str], flag: str) -> None:
    if path is not None and not os.path.exists(path):
        fail(f'{flag}: {path} not found')


def check_new_outputs(paths: Sequence[str], overwrite: bool) -> None:
    """Refuse to replace existing files unless ``--overwrite``."""
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        fail(f'{len(existing)} result file(s) already exist, e.g. {existing[0]}; pass --overwrite '
             'to replace them or choose another --result_dir')


def check_writable_dir(path: str, flag: str) -> None:
    """Create ``path`` and check that a file can be made in it, before any model is loaded."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        fail(f'{flag}: cannot write into {path} ({err.strerror or err}); expected a writable folder')


def find_weights(weights: Optional[str], root: str = REPO_ROOT) -> Tuple[str, str]:
    """(path, what it is) of ``--weights`` when given, else of the first of DEFAULT_WEIGHTS
    present in ``root``. A missing file ends the run with where the official weights are
    published."""
    from utils.checkpoint import HOW_TO_GET_WEIGHTS

    if weights is not None:
        if not os.path.isfile(weights):
            fail(f'weights file not found: {weights}. {HOW_TO_GET_WEIGHTS}')
        return weights, weights
    for relative, what in DEFAULT_WEIGHTS:
        path = os.path.join(root, relative)
        if os.path.isfile(path):
            return path, f'{relative} ({what}; another: --weights)'
    fail(f'no weights given and none found at {" or ".join(r for r, _ in DEFAULT_WEIGHTS)}. '
         f'{HOW_TO_GET_WEIGHTS}')


def resolve_weights(weights: Optional[str], root: str = REPO_ROOT) -> str:
    """``find_weights``, saying which on one line."""
    path, what = find_weights(weights, root)
    print(f'weights: {what}')
    return path
