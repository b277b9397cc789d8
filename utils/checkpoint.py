"""The checkpoint format: what a weights file or a training checkpoint holds, read and written here only.

A weights file holds a bare state dict (official weights converted by
tools/convert_torch_weights.py, earlier Paddle reproductions) or a training checkpoint,
a dict with the weights under ``state_dict`` and the keys of ``training_checkpoint``.
Prefixes added by data-parallel wrappers (``module.``, ``_layers.``) are removed.
Files are written atomically (``atomic_save``).
"""
import os
import tempfile
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import paddle

WRAPPER_PREFIXES = ('module.', '_layers.')
OFFICIAL_WEIGHTS = 'https://github.com/Yang-Liu1082/InvDN/tree/main/pretrained'
HOW_TO_GET_WEIGHTS = (
    f'The official weights (InvDN_ResUnit_x4.pth) are published in the official repository\'s '
    f'pretrained/ folder ({OFFICIAL_WEIGHTS}); convert them with: python -m '
    'tools.convert_torch_weights --input InvDN_ResUnit_x4.pth --output pretrained/InvDN_ResUnit_x4.pdparams '
    '(or train a model: python train_denoising_1card.py)')
# What a training checkpoint holds besides ``best_psnr`` and ``history``.
TRAINING_KEYS = ('state_dict', 'optimizer', 'lr_scheduler', 'iter', 'rng_states', 'config')
NETWORK_KEYS = ('in_nc', 'out_nc', 'block_num', 'scale')


class WeightsError(ValueError):
    """A weights file does not match the model."""


class CheckpointError(ValueError):
    """A file is not a usable training checkpoint."""


def strip_wrapper_prefixes(state: Mapping[str, Any]) -> Dict[str, Any]:
    cleaned = {}
    for key, value in state.items():
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    return cleaned


def extract_state_dict(obj: Any, source: str) -> Dict[str, Any]:
    """The model weights inside a loaded file: ``obj['state_dict']`` or ``obj`` itself."""
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f'{source}: expected a state dict (or a checkpoint with a '
                           f"'state_dict' entry), found {type(obj).__name__}")
    return strip_wrapper_prefixes(obj)


def load_weights_file(path: str) -> Any:
    """The content of a .pdparams file (bare state dict or training checkpoint)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file not found: {path}. {HOW_TO_GET_WEIGHTS}')
    return paddle.load(path)


def compare_state_dicts(expected: Mapping[str, Any], given: Mapping[str, Any]
                        ) -> Tuple[List[str], List[str], List[str]]:
    """(missing keys, unexpected keys, 'key: given shape vs expected shape' mismatches)."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    mismatched = []
    for key in sorted(set(expected) & set(given)):
        want, got = list(expected[key].shape), list(np.shape(given[key]))
        if want != got:
            mismatched.append(f'{key}: {got} vs expected {want}')
    return missing, unexpected, mismatched


def describe_mismatch(source: str, missing: List[str], unexpected: List[str],
                      mismatched: List[str], limit: int = 10) -> str:
    lines = [f'{source} does not match the model:']
    for title, items in (('missing', missing), ('unexpected', unexpected),
                         ('mis-shaped', mismatched)):
        if items:
            shown = ', '.join(items[:limit]) + (f' ... (+{len(items) - limit} more)'
                                                if len(items) > limit else '')
            lines.append(f'  {len(items)} {title} keys: {shown}')
    return '\n'.join(lines)


def load_weights(model: paddle.nn.Layer, path: str, content: Any = None) -> None:
    """Load weights into ``model``; every name and shape must match.

    ``content``: the file already read with ``load_weights_file(path)``, to avoid reading it twice.
    """
    state = extract_state_dict(load_weights_file(path) if content is None else content, path)
    missing, unexpected, mismatched = compare_state_dicts(model.state_dict(), state)
    if missing or unexpected or mismatched:
        raise WeightsError(describe_mismatch(path, missing, unexpected, mismatched))
    model.set_state_dict(state)


def saved_network_options(content: Any) -> Dict[str, Any]:
    """``network_G`` options stored in a training checkpoint's ``config`` (empty when none)."""
    config = content.get('config') if isinstance(content, Mapping) else None
    network = config.get('network_G') if isinstance(config, Mapping) else None
    if not isinstance(network, Mapping):
        return {}
    return {key: network[key] for key in NETWORK_KEYS if key in network}


def training_checkpoint(state_dict: Mapping[str, Any], optimizer: Mapping[str, Any],
                        lr_scheduler: Mapping[str, Any], iteration: int, best_psnr: float,
                        rng_states: List[Dict[str, Any]], config: Dict[str, Any],
                        history: Dict[str, Any], optimizer_kind: str) -> Dict[str, Any]:
    """Everything a resumed run needs: weights, Adam state (and its kind: 'adam' or
    'adam_multi_tensor', which keep their state differently), schedule position, iteration,
    best validation PSNR, every rank's RNG states, the configuration and the logged curves."""
    return {'state_dict': state_dict, 'optimizer': optimizer, 'optimizer_kind': optimizer_kind,
            'lr_scheduler': lr_scheduler, 'iter': iteration, 'best_psnr': best_psnr,
            'rng_states': rng_states, 'config': config, 'history': history}


def read_training_checkpoint(path: str) -> Dict[str, Any]:
    """A training checkpoint written by ``training_checkpoint``, with its weights unwrapped."""
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    state = paddle.load(path)
    absent = [key for key in TRAINING_KEYS if not isinstance(state, Mapping) or key not in state]
    if absent:
        raise CheckpointError(f'{path} is not a training checkpoint (no {absent}); to start '
                              'from its weights use -o path.pretrain_model_G=PATH instead')
    state = dict(state)
    state['state_dict'] = extract_state_dict(state, path)
    state.setdefault('best_psnr', float('-inf'))
    state.setdefault('history', None)
    state.setdefault('optimizer_kind', 'adam')  # written before multi-tensor Adam
    return state


def atomic_save(obj: Any, path: str) -> None:
    """``paddle.save`` to a temporary file beside ``path``, then rename over it.

    A crash while writing leaves the previous file intact.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                                    dir=folder)
    os.close(fd)
    try:
        paddle.save(obj, tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
