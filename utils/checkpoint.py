"""The checkpoint format: what a weights file or a training checkpoint holds, read and written here only.

A weights file holds a bare state dict (official weights converted by
tools/convert_torch_weights.py, earlier Paddle reproductions) or a training checkpoint,
a dict with the weights under ``state_dict`` and the keys of ``training_checkpoint``. A run
with weight averaging (``train.ema_decay``) also holds the averaged weights under
``ema_state_dict``: they are then the model the file gives for testing, export and fine-tuning,
while a resumed run continues from both.
Prefixes added by data-parallel wrappers (``module.``, ``_layers.``) are removed.

Files are written atomically and durably (``atomic_save``, utils/durable.py). A training
checkpoint also holds a SHA-256 of its numbers (``integrity``), so that a file truncated or
altered on disk is refused at load with its name and what is wrong (``paddle.load`` itself
accepts a flipped byte inside a tensor). Training keeps the last ``logger.keep_checkpoints``
checkpoints as ``model_iter_<N>.pdparams`` with ``model_latest.pdparams`` a hard link to the
newest; ``find_resumable`` walks them newest first, past unreadable ones.
"""
import hashlib
import os
import re
import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import paddle

from utils.durable import atomic_link, atomic_path

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
LATEST = 'model_latest.pdparams'
ITER_PATTERN = re.compile(r'^model_iter_(\d+)\.pdparams$')
# The entries the checksum covers: everything numeric a resumed run continues from (the RNG
# states hold Paddle generator objects whose pickled form is not canonical).
DIGEST_KEYS = ('state_dict', 'optimizer', 'lr_scheduler', 'iter', 'best_psnr', 'history')
EMA_KEY = 'ema_state_dict'  # digested too when present (files without it keep their digest)


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


def extract_state_dict(obj: Any, source: str, averaged: bool = True) -> Dict[str, Any]:
    """The model weights inside a loaded file: ``obj['ema_state_dict']`` (when ``averaged`` and
    the run averaged its weights), ``obj['state_dict']``, or ``obj`` itself."""
    if averaged and isinstance(obj, Mapping) and isinstance(obj.get(EMA_KEY), Mapping):
        obj = obj[EMA_KEY]
    elif isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f'{source}: expected a state dict (or a checkpoint with a '
                           f"'state_dict' entry), found {type(obj).__name__}")
    return strip_wrapper_prefixes(obj)


def _paddle_load(path: str) -> Any:
    """``paddle.load``, its failures on a damaged file as one ``ValueError`` naming the file."""
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f'{path} is empty (0 bytes): truncated, e.g. by a full disk or a crash')
    try:
        return paddle.load(path)
    except Exception as err:  # noqa: BLE001 -- unpickling damaged bytes raises arbitrary types
        raise ValueError(f'{path} ({size} bytes) cannot be read as a Paddle checkpoint: truncated '
                         f'or corrupted ({type(err).__name__}: {str(err)[:120]})') from None


def load_weights_file(path: str) -> Any:
    """The content of a .pdparams file (bare state dict or training checkpoint); a checkpoint
    that holds a SHA-256 (``integrity``) is verified against it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file not found: {path}. {HOW_TO_GET_WEIGHTS}')
    try:
        content = _paddle_load(path)
    except ValueError as err:
        raise WeightsError(str(err)) from None
    expected = content.get('integrity') if isinstance(content, Mapping) else None
    if expected is not None and checkpoint_digest(content) != expected:
        raise WeightsError(f'{path} is corrupted: its content does not match the SHA-256 recorded '
                           'when it was written (altered on disk); use another copy or checkpoint')
    return content


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
    """Load weights into ``model``; every name and shape must match, every number be finite.

    ``content``: the file already read with ``load_weights_file(path)``, to avoid reading it twice.
    """
    state = extract_state_dict(load_weights_file(path) if content is None else content, path)
    missing, unexpected, mismatched = compare_state_dicts(model.state_dict(), state)
    if missing or unexpected or mismatched:
        raise WeightsError(describe_mismatch(path, missing, unexpected, mismatched))
    broken = [key for key, value in state.items() if not np.isfinite(np.asarray(value)).all()]
    if broken:
        raise WeightsError(f'{path} holds NaN or Inf in {len(broken)} tensor(s), e.g. {broken[0]}: '
                           'damaged, or saved from a diverged training run; use another checkpoint')
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
                        history: Dict[str, Any], optimizer_kind: str,
                        ema_state_dict: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Everything a resumed run needs: weights, Adam state (and its kind: 'adam' or
    'adam_multi_tensor', which keep their state differently), schedule position, iteration,
    best validation PSNR, every rank's RNG states, the configuration and the logged curves;
    and the averaged weights when the run keeps them."""
    checkpoint = {'state_dict': state_dict, 'optimizer': optimizer, 'optimizer_kind': optimizer_kind,
                  'lr_scheduler': lr_scheduler, 'iter': iteration, 'best_psnr': best_psnr,
                  'rng_states': rng_states, 'config': config, 'history': history}
    if ema_state_dict is not None:
        checkpoint[EMA_KEY] = ema_state_dict
    return checkpoint


def with_integrity(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    """``checkpoint`` with its SHA-256 (checked by ``read_training_checkpoint``)."""
    return dict(checkpoint, integrity=checkpoint_digest(checkpoint))


def _feed(digest: Any, obj: Any) -> None:
    """Hash ``obj`` canonically: the same numbers give the same digest before saving (Paddle
    tensors, NumPy arrays, tuples) and after loading (tensors, lists)."""
    if isinstance(obj, Mapping):
        digest.update(b'{%d' % len(obj))
        for key in sorted(obj, key=str):
            digest.update(str(key).encode() + b':')
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(b'[%d' % len(obj))
        for item in obj:
            _feed(digest, item)
    elif isinstance(obj, (paddle.Tensor, np.ndarray)):
        array = np.ascontiguousarray(np.asarray(obj))
        digest.update(f'{array.dtype.str}{array.shape}'.encode())
        digest.update(array.tobytes())
    elif isinstance(obj, float):
        digest.update(b'f' + struct.pack('<d', obj))
    else:
        digest.update(repr(obj).encode())


def checkpoint_digest(checkpoint: Mapping[str, Any]) -> str:
    """SHA-256 of the checkpoint's ``DIGEST_KEYS`` entries."""
    digest = hashlib.sha256()
    for key in DIGEST_KEYS + ((EMA_KEY,) if EMA_KEY in checkpoint else ()):
        digest.update(key.encode())
        _feed(digest, checkpoint.get(key))
    return digest.hexdigest()


def read_training_checkpoint(path: str) -> Dict[str, Any]:
    """A training checkpoint written by ``training_checkpoint``, with its weights unwrapped.

    A truncated, corrupted or foreign file is a ``CheckpointError`` naming it and the fault.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        state = _paddle_load(path)
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    absent = [key for key in TRAINING_KEYS if not isinstance(state, Mapping) or key not in state]
    if absent:
        raise CheckpointError(f'{path} is not a training checkpoint (no {absent}); to start '
                              'from its weights use -o path.pretrain_model_G=PATH instead')
    expected = state.get('integrity')
    if expected is not None and checkpoint_digest(state) != expected:
        raise CheckpointError(f'{path} is corrupted: its content does not match the SHA-256 '
                              'recorded when it was written (altered on disk)')
    state = dict(state)
    try:
        state['state_dict'] = extract_state_dict(state, path, averaged=False)
        if EMA_KEY in state:
            state[EMA_KEY] = extract_state_dict(state[EMA_KEY], path)
    except WeightsError as err:
        raise CheckpointError(str(err)) from None
    state.setdefault('best_psnr', float('-inf'))
    state.setdefault('history', None)
    state.setdefault('optimizer_kind', 'adam')  # written before multi-tensor Adam
    return state


def atomic_save(obj: Any, path: str) -> None:
    """``paddle.save`` to a temporary file beside ``path``, flushed, then renamed over it
    (utils/durable.py): a crash, power cut or full disk leaves the previous file intact."""
    with atomic_path(path) as tmp:
        paddle.save(obj, tmp)


def iteration_checkpoints(models_dir: str) -> List[Tuple[int, str]]:
    """(iteration, path) of the ``model_iter_<N>.pdparams`` files, oldest first."""
    if not os.path.isdir(models_dir):
        return []
    found = [(int(m.group(1)), os.path.join(models_dir, name)) for name in os.listdir(models_dir)
             for m in [ITER_PATTERN.match(name)] if m]
    return sorted(found)


def save_training_checkpoint(checkpoint: Dict[str, Any], models_dir: str, keep: int) -> str:
    """Write ``model_iter_<iter>.pdparams`` (with its checksum), point ``model_latest.pdparams``
    at it, and remove the oldest iteration checkpoints beyond ``keep`` (0 keeps all).
    Returns the path of the latest checkpoint."""
    path = os.path.join(models_dir, f'model_iter_{int(checkpoint["iter"]):08d}.pdparams')
    atomic_save(with_integrity(checkpoint), path)
    latest = os.path.join(models_dir, LATEST)
    atomic_link(path, latest)
    if keep > 0:
        for _, old in iteration_checkpoints(models_dir)[:-keep]:
            os.remove(old)
    return latest


def find_resumable(models_dir: str) -> Tuple[Optional[str], Optional[Dict[str, Any]], List[str]]:
    """The newest readable checkpoint in ``models_dir``: (path, content, one warning per
    newer file that could not be read); (None, None, warnings) when none can be read."""
    candidates = [os.path.join(models_dir, LATEST)]
    candidates += [path for _, path in reversed(iteration_checkpoints(models_dir))]
    warnings: List[str] = []
    tried: List[str] = []
    for path in candidates:
        if not os.path.isfile(path):
            continue
        if any(os.path.samefile(path, done) for done in tried):
            continue  # model_latest is a hard link to the newest iteration file
        tried.append(path)
        try:
            return path, read_training_checkpoint(path), warnings
        except CheckpointError as err:
            warnings.append(f'WARNING: skipped {err}')
    return None, None, warnings
