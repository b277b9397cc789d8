"""Convert official PyTorch InvDN weights (.pth) into a Paddle state dict (.pdparams).

    python -m tools.convert_torch_weights --input InvDN_ResUnit_x4.pth \\
        --output pretrained/InvDN_ResUnit_x4.pdparams

The official parameter names are kept (networks.InvNet uses the same ones), so the
conversion is a name/shape check plus a tensor copy; Conv2d weights have the same
[out, in, kh, kw] layout in both frameworks. torch is needed only here.
"""
import argparse
import os
from typing import Any, Dict, Mapping, Sequence

import numpy as np

from config import paper_default
from apps import cli
from utils.checkpoint import WeightsError, compare_state_dicts, describe_mismatch, extract_state_dict


def _to_float32(value: Any) -> np.ndarray:
    if hasattr(value, 'detach'):  # a torch tensor; avoids importing torch here
        value = value.detach().cpu().float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def convert_state_dict(torch_state: Mapping[str, Any], model: Any,
                       source: str = 'torch checkpoint') -> Dict[str, np.ndarray]:
    """Official state dict (bare, under 'state_dict', with or without 'module.') -> float32
    numpy arrays keyed and ordered like ``model.state_dict()``.

    Raises WeightsError listing the missing, unexpected and mis-shaped keys.
    """
    state = extract_state_dict(torch_state, source)
    expected = model.state_dict()
    missing, unexpected, mismatched = compare_state_dicts(expected, state)
    if missing or unexpected or mismatched:
        raise WeightsError(describe_mismatch(source, missing, unexpected, mismatched))
    return {key: _to_float32(state[key]) for key in expected}


def load_torch_file(path: str) -> Any:
    """``torch.load`` on CPU, refusing pickled code (official weights are plain tensors)."""
    import pickle

    import torch

    if not os.path.isfile(path):
        raise FileNotFoundError(f'--input {path}: file not found')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(f'{path}: not a plain PyTorch weights file (torch.load with '
                           f'weights_only=True refused it: {error})') from error


def convert_file(src: str, dst: str, block_num: Sequence[int] = paper_default('network_G.block_num'),
                 scale: int = paper_default('scale'),
                 overwrite: bool = False) -> int:
    """Convert ``src`` into ``dst`` for the network of ``block_num`` and ``scale``; returns the
    number of tensors written. The written file is loaded back into a fresh model as a check."""
    import paddle

    from networks.InvDN_model import build_invnet
    from utils.checkpoint import atomic_save, load_weights

    if os.path.exists(dst) and not overwrite:
        raise FileExistsError(f'--output {dst} exists; pass --overwrite to replace it')
    network = dict(paper_default('network_G'), block_num=list(block_num), scale=scale)
    model = build_invnet(network['in_nc'], network['out_nc'], network['block_num'], network['scale'])
    state = convert_state_dict(load_torch_file(src), model, source=src)
    atomic_save({key: paddle.to_tensor(value) for key, value in state.items()}, dst)
    load_weights(build_invnet(network['in_nc'], network['out_nc'], network['block_num'],
                              network['scale']), dst)
    return len(state)


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--input', required=True, help='official PyTorch weights (.pth)')
    parser.add_argument('--output', required=True, help='output Paddle weights (.pdparams)')
    parser.add_argument('--block_num', type=int, nargs='+', default=paper_default('network_G.block_num'),
                        help='coupling blocks per Haar stage (network_G.block_num)')
    parser.add_argument('--scale', type=int, default=paper_default('scale'),
                        help='total downsampling factor (network_G.scale)')
    cli.add_bool_arg(parser, '--overwrite', default=False, help='replace --output if it exists')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> None:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    import paddle

    paddle.set_device('cpu')
    try:
        count = convert_file(args.input, args.output, args.block_num, args.scale, args.overwrite)
    except ImportError:
        cli.fail('reading .pth files needs PyTorch: pip install torch==2.13.0 (or bash tools/install.sh --test)')
    except (WeightsError, FileNotFoundError, FileExistsError, ValueError) as error:
        cli.fail(error)
    print(f'wrote {count} tensors to {args.output}')


if __name__ == '__main__':
    main()
