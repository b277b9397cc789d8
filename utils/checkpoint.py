"""Weights and checkpoints: one loader for every script, one atomic writer.

A file may hold a bare state dict (official weights converted by
tools/convert_torch_weights.py, earlier Paddle reproductions) or a training
checkpoint with the weights under ``state_dict``. Prefixes added by data-parallel
wrappers (``module.``, ``_layers.``) are removed.
"""
import os
import tempfile
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import paddle

WRAPPER_PREFIXES = ('module.', '_layers.')
HOW_TO_GET_WEIGHTS = (
    'Train a model (python train_denoising_1card.py), or convert the official PyTorch weights '
    'with: python tools/convert_torch_weights.py --src InvDN_ResUnit_x4.pth '
    '--dst pretrained/InvDN_ResUnit_x4.pdparams')


class WeightsError(ValueError):
    """A weights file does not match the model."""


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
