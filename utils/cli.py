"""Command-line pieces shared by the evaluation, prediction and export scripts.

Paddle is imported only when a model is loaded, so that ``--help`` answers at once.
"""
import argparse
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

DEFAULT_WEIGHTS = 'pretrained/InvDN_ResUnit_x4.pdparams'
PAPER_NETWORK = {'in_nc': 3, 'out_nc': 3, 'block_num': [8, 8], 'scale': 4}


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
                        metavar='True|False', help=f'{help} (default: {default})')


def parse_seed(value: str) -> Optional[int]:
    """An integer seed, or 'none' for a fresh random draw on every run."""
    if str(value).lower() == 'none':
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer or 'none', got {value!r}") from None


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--weights, --block_num, --scale, --device."""
    parser.add_argument('--weights', default=DEFAULT_WEIGHTS,
                        help='model weights (.pdparams: converted official weights or a training '
                             f'checkpoint) (default: {DEFAULT_WEIGHTS})')
    parser.add_argument('--block_num', type=int, nargs='+', default=None,
                        help='coupling blocks per downsampling stage (default: from the checkpoint '
                             "config if saved by our trainer, else the paper's 8 8)")
    parser.add_argument('--scale', type=int, default=None,
                        help='total downsampling factor, a power of 2 (default: checkpoint config, else 4)')
    parser.add_argument('--device', default='auto', metavar='auto|gpu|cpu',
                        help='auto: the GPU when Paddle has one, else the CPU (default: auto)')


def add_backend_arg(parser: argparse.ArgumentParser) -> None:
    """--backend: how the denoising passes run."""
    parser.add_argument('--backend', default='auto', choices=('auto', 'dygraph', 'inference'),
                        help='inference: export both passes and run them with Paddle Inference '
                             '(oneDNN; same results to float32 rounding, several times faster on '
                             'CPU after ~15 s of export); dygraph: the Paddle model directly; '
                             'auto: inference on CPU, dygraph on GPU (default: auto)')


def denoiser_from_args(model: 'InvNet', args: argparse.Namespace) -> Any:
    """``model`` or its Paddle Inference passes (utils.denoise accepts both), per --backend."""
    import paddle

    backend = args.backend
    if backend == 'auto':
        backend = 'dygraph' if paddle.get_device().startswith('gpu') else 'inference'
    if backend == 'dygraph':
        return model
    from utils.paddle_inference import predictor_passes

    return predictor_passes(model, use_gpu=paddle.get_device().startswith('gpu'))


def image_files(path: str, flag: str) -> List[str]:
    """The images named by a command-line path: one image file, or those in a folder."""
    from utils.image_io import is_image_file, list_images

    if os.path.isdir(path):
        files = list_images(path)
        if not files:
            raise FileNotFoundError(f'{flag}: no PNG/JPEG/TIFF/BMP images in {path}')
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{flag}: {path} not found')
    if not is_image_file(path):
        raise ValueError(f'{flag}: {path} is not an image file '
                         '(expected .png, .jpg, .jpeg, .tif, .tiff or .bmp)')
    return [path]


def matching_file(folder_or_file: Optional[str], name: str) -> Optional[str]:
    """The file called ``name`` in a folder (e.g. the clean image of a noisy one); a single
    file stands for itself."""
    if folder_or_file is None:
        return None
    return folder_or_file if os.path.isfile(folder_or_file) else os.path.join(folder_or_file, name)


def saved_network_options(content: Any) -> Dict[str, Any]:
    """``network_G`` options stored in a training checkpoint's ``config`` (empty when none)."""
    config = content.get('config') if isinstance(content, dict) else None
    network = config.get('network_G') if isinstance(config, dict) else None
    if not isinstance(network, dict):
        return {}
    return {key: network[key] for key in PAPER_NETWORK if key in network}


def load_invnet(weights: str, block_num: Optional[Sequence[int]] = None, scale: Optional[int] = None,
                network_class: Optional[type] = None) -> 'InvNet':
    """The network (``InvNet``, or ``network_class``) with ``weights`` loaded, in eval mode.

    Architecture: the explicit arguments, else the checkpoint's saved config, else the paper's.
    """
    from networks.InvDN_model import InvNet, build_invnet
    from utils.checkpoint import load_weights, load_weights_file

    content = load_weights_file(weights)
    options = dict(PAPER_NETWORK, **saved_network_options(content))
    if block_num is not None:
        options['block_num'] = list(block_num)
    if scale is not None:
        options['scale'] = scale
    model = build_invnet(options['in_nc'], options['out_nc'], options['block_num'], options['scale'],
                         network_class=network_class or InvNet)
    load_weights(model, weights, content)
    model.eval()
    return model


def model_from_args(args: argparse.Namespace, network_class: Optional[type] = None) -> 'InvNet':
    """Select ``--device`` and load ``--weights`` (see ``load_invnet``); exit with a clear
    message when the device or the weights are unusable."""
    from utils.checkpoint import WeightsError
    from utils.device import select_device

    try:
        select_device(args.device)
        return load_invnet(args.weights, args.block_num, args.scale, network_class)
    except WeightsError as err:
        sys.exit(f'error: {err}\n(weights of another architecture: pass --block_num/--scale)')
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        sys.exit(f'error: {err}')
