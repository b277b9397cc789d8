"""YAML configuration: one typed schema with the paper's defaults, ``-o key.sub=value`` overrides.

Option names follow the official ``options/train/train_InvDN.yml`` (BasicSR style). Every key
is checked against the schema: an unknown key or a value of the wrong type is an error that
names the key, never silently ignored.
"""
import copy
import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

import yaml


class ConfigError(ValueError):
    """A configuration file or override has an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class Field:
    """One leaf of the schema: default value, expected kind and optional constraints."""
    default: Any
    kind: str  # 'str', 'int', 'float', 'bool', 'int_list'
    optional: bool = False  # None (YAML ``~``) allowed
    choices: tuple = ()


# Defaults are the paper's settings (Liu et al., CVPR 2021; official train_InvDN.yml), except
# batch_size: the official YAML says 28, the paper 14 (the earlier Paddle reproduction: 14 per
# card on 4 cards).
SCHEMA: Dict[str, Any] = {
    'name': Field('InvDN_ResUnit_x4', 'str'),
    'device': Field('auto', 'str', choices=('auto', 'gpu', 'cpu')),
    'scale': Field(4, 'int'),
    'datasets': {
        'train': {
            # LQGTRN: GT/Noisy pairs (real noise, the paper's SIDD training); LQGTSN: clean
            # images, Noisy = GT + Gaussian noise (official LQGTSN_dataset): 'S' fixed sigma
            # (0-255 scale), 'B' blind, sigma ~ U(0, 55) per sample.
            'mode': Field('LQGTRN', 'str', choices=('LQGTRN', 'LQGTSN')),
            'noise_mode': Field('S', 'str', choices=('S', 'B')),
            'sigma': Field(25.0, 'float'),
            # The folders of the earlier Paddle reproduction (generate_patches_sidd.py,
            # generate_lq.py and extract_valid_patches_sidd.py write them by default).
            'dataroot': Field('SIDD_Medium_Srgb_Patches_512/train', 'str'),
            'batch_size': Field(14, 'int'),
            'GT_size': Field(144, 'int'),
            'use_flip': Field(True, 'bool'),
            'use_rot': Field(True, 'bool'),
            'n_workers': Field(6, 'int'),
            'use_shuffle': Field(True, 'bool'),
            'use_shared_memory': Field(True, 'bool'),  # worker batches through /dev/shm
            # Not in the paper (1: off): every training crop (GT, Noisy and LQ alike) is
            # multiplied by a gain drawn log-uniformly from [1, brightness_max] and clipped at
            # white, so that a model trained on a few dim scenes also meets bright content.
            'brightness_max': Field(1.0, 'float'),
        },
        'val': {
            'mode': Field('LQGTRN', 'str', choices=('LQGTRN', 'LQGTSN')),
            'noise_mode': Field('S', 'str', choices=('S', 'B')),
            'sigma': Field(25.0, 'float'),
            'dataroot': Field('SIDD_Valid_Srgb_Patches_256/valid', 'str'),
            'batch_size': Field(8, 'int'),  # blocks denoised together; results do not depend on it
        },
    },
    'network_G': {
        'in_nc': Field(3, 'int'),
        'out_nc': Field(3, 'int'),
        'block_num': Field([8, 8], 'int_list'),
        'scale': Field(4, 'int'),
    },
    'train': {
        'lr_G': Field(2e-4, 'float'),
        'beta1': Field(0.9, 'float'),
        'beta2': Field(0.999, 'float'),
        'niter': Field(600000, 'int'),
        'lr_steps': Field([100000, 200000, 300000, 400000, 500000], 'int_list'),
        'lr_gamma': Field(0.5, 'float'),
        'weight_decay_G': Field(1e-8, 'float'),
        'gradient_clipping': Field(10.0, 'float', optional=True),
        'pixel_criterion_forw': Field('l2', 'str', choices=('l1', 'l2')),
        'pixel_criterion_back': Field('l1', 'str', choices=('l1', 'l2')),
        'lambda_fit_forw': Field(16.0, 'float'),
        'lambda_rec_back': Field(1.0, 'float'),
        'lambda_grad_back': Field(0.1, 'float'),
        'lambda_ssim_back': Field(1.0, 'float'),
        'gaussian_scale': Field(1.0, 'float'),
        'manual_seed': Field(10, 'int'),
        # Not in the paper (0: off): an exponential moving average of the weights (BasicSR's
        # ema_decay), kept in the checkpoint, validated and used as the model when on.
        'ema_decay': Field(0.0, 'float'),
        'val_freq': Field(5000, 'int'),
        # Cards (processes) that batch_size, lr_G, niter and lr_steps are set for.
        'world_size': Field(1, 'int'),
        # GPU only: cuDNN's deterministic algorithms (exact resume; slower), and TF32 for
        # convolutions and matmuls (faster on Ampere and later; not float32 arithmetic).
        'deterministic': Field(False, 'bool'),
        'allow_tf32': Field(False, 'bool'),
        # Mixed precision on GPUs (not in the paper, which trains in float32): off, O1
        # (autocast) or O2 (float16 weights, float32 master copies), float16 with dynamic loss
        # scaling; Paddle has no bf16 training on CPUs (training/trainer.py MixedPrecision).
        'amp': Field('off', 'str', choices=('off', 'O1', 'O2')),
        # CPU only: every 3x3 convolution through the oneDNN custom operator
        # (ops/onednn_conv, built on first use; Paddle's own conv when it cannot be built),
        # which makes the step as fast as the official PyTorch one (docs/benchmarks.md), or
        # always Paddle's own dygraph convolution. The two agree to float32 rounding.
        'cpu_conv': Field('auto', 'str', choices=('auto', 'paddle')),
    },
    'logger': {
        'print_freq': Field(100, 'int'),
        'save_checkpoint_freq': Field(5000, 'int'),
        # Iteration checkpoints kept (model_iter_<N>.pdparams; 0 keeps all, as the official
        # code does): a damaged newest file falls back to the one before (docs/reliability.md).
        'keep_checkpoints': Field(3, 'int'),
    },
    'path': {
        'experiments_root': Field('experiments', 'str'),
        'pretrain_model_G': Field(None, 'str', optional=True),
        'resume_state': Field(None, 'str', optional=True),
    },
}


def paper_default(key: str) -> Any:
    """The schema's default of a dotted key (``'train.lambda_fit_forw'``): the paper's setting.

    The one place the paper's values are written; other modules read them from here.
    """
    node: Any = SCHEMA
    for part in key.split('.'):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"no config key '{key}'{_closest(part, node if isinstance(node, dict) else {})}")
        node = node[part]
    return copy.deepcopy(_defaults(node) if isinstance(node, dict) else node.default)


class Config:
    """Read-only attribute access to a validated nested dict: ``cfg.train.lr_G``."""

    def __init__(self, data: Dict[str, Any], prefix: str = ''):
        object.__setattr__(self, '_data', data)
        object.__setattr__(self, '_prefix', prefix)

    def __getattr__(self, key: str) -> Any:
        if key.startswith('_') or key not in self._data:  # '_' keeps copy/pickle protocols away
            raise AttributeError(f"configuration has no key '{self.__dict__.get('_prefix', '')}{key}'")
        value = self._data[key]
        return Config(value, f'{self._prefix}{key}.') if isinstance(value, dict) else value

    def __getitem__(self, key: str) -> Any:
        return self.__getattr__(key)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError('Config is read-only; use load_config(path, overrides=[...]) to change it')

    def __repr__(self) -> str:
        return f'Config({self._data!r})'

    def to_dict(self) -> Dict[str, Any]:
        return copy.deepcopy(self._data)


def _closest(key: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.0)
    return f" (closest known key: '{match[0]}')" if match else ''


def _as_number(value: Any) -> Any:
    """Numbers pass; numeric strings become floats (PyYAML reads ``2e-4`` as a string)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _as_int(value: Any) -> Optional[int]:
    value = _as_number(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)  # e.g. ``val_freq: !!float 5e3`` in the official YAML
    return None


def _check_leaf(key: str, value: Any, field: Field) -> Any:
    if value is None:
        if field.optional:
            return None
        raise ConfigError(f"config key '{key}' must be set (got null); expected {field.kind}")
    expected = {'str': 'a string', 'int': 'an integer', 'float': 'a number', 'bool': 'true or false',
                'int_list': 'a list of integers'}[field.kind]
    result: Any = None
    if field.kind == 'str' and isinstance(value, str):
        result = value
    elif field.kind == 'str' and value is False and 'off' in field.choices:
        result = 'off'  # YAML 1.1 (PyYAML) reads an unquoted off as false
    elif field.kind == 'bool' and isinstance(value, bool):
        result = value
    elif field.kind == 'int':
        result = _as_int(value)
    elif field.kind == 'float':
        number = _as_number(value)
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            result = float(number)
    elif field.kind == 'int_list' and isinstance(value, (list, tuple)):
        items = [_as_int(v) for v in value]
        result = items if all(v is not None for v in items) else None
    if result is None:
        raise ConfigError(f"config key '{key}' has value {value!r} ({type(value).__name__}); "
                          f"expected {expected}")
    if field.choices and result not in field.choices:
        raise ConfigError(f"config key '{key}' has value {value!r}; expected one of {list(field.choices)}")
    return result


def _merge(schema: Dict[str, Any], values: Dict[str, Any], base: Dict[str, Any], prefix: str = '') -> Dict[str, Any]:
    """``base`` updated with ``values``, every key and type checked against ``schema``."""
    if not isinstance(values, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, "
                          f"got {values!r}")
    out = dict(base)
    for key, value in values.items():
        full = f'{prefix}{key}'
        if key not in schema:
            raise ConfigError(f"unknown config key '{full}'{_closest(str(key), schema)}")
        spec = schema[key]
        if isinstance(spec, dict):
            out[key] = _merge(spec, value, base[key], f'{full}.')
        else:
            out[key] = _check_leaf(full, value, spec)
    return out


def _defaults(schema: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _defaults(v) if isinstance(v, dict) else copy.deepcopy(v.default)
            for k, v in schema.items()}


def _parse_override(text: str) -> Dict[str, Any]:
    """``'a.b=value'`` -> ``{'a': {'b': value}}``, the value parsed as YAML."""
    if '=' not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split('=', 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err})") from err
    nested: Dict[str, Any] = value
    for part in reversed(key.strip().split('.')):
        if not part:
            raise ConfigError(f"override {text!r} has an empty key part")
        nested = {part: nested}
    return nested


def _check_consistency(data: Dict[str, Any]) -> None:
    scale, net = data['scale'], data['network_G']
    if scale < 1 or scale & (scale - 1):
        raise ConfigError(f"config key 'scale' must be a power of 2, got {scale}")
    if net['scale'] != scale:
        raise ConfigError(f"config keys 'scale' ({scale}) and 'network_G.scale' ({net['scale']}) differ")
    if len(net['block_num']) != int(math.log2(scale)):
        raise ConfigError(f"config key 'network_G.block_num' has {len(net['block_num'])} entries; "
                          f"expected one per 2x downscaling, log2(scale) = {int(math.log2(scale))}")
    gt_size = data['datasets']['train']['GT_size']
    if gt_size <= 0 or gt_size % scale:
        raise ConfigError(f"config key 'datasets.train.GT_size' ({gt_size}) must be a positive "
                          f"multiple of scale ({scale})")
    counts = {'datasets.train.batch_size': data['datasets']['train']['batch_size'],
              'train.niter': data['train']['niter'], 'train.val_freq': data['train']['val_freq'],
              'train.world_size': data['train']['world_size'],
              'datasets.val.batch_size': data['datasets']['val']['batch_size'],
              'logger.print_freq': data['logger']['print_freq'],
              'logger.save_checkpoint_freq': data['logger']['save_checkpoint_freq']}
    for key, value in counts.items():
        if value < 1:
            raise ConfigError(f"config key '{key}' must be a positive integer, got {value}")
    if data['logger']['keep_checkpoints'] < 0:
        raise ConfigError("config key 'logger.keep_checkpoints' must be 0 (keep all) or a positive "
                          f"integer, got {data['logger']['keep_checkpoints']}")
    if not 0 < data['train']['lr_gamma'] < 1:
        raise ConfigError(f"config key 'train.lr_gamma' must be in (0, 1) (MultiStepDecay), got "
                          f"{data['train']['lr_gamma']}")
    steps = data['train']['lr_steps']
    if steps != sorted(steps):
        raise ConfigError(f"config key 'train.lr_steps' must be increasing, got {steps}")
    name = data['name']
    if not name or name in ('.', '..') or '/' in name or '\\' in name:
        raise ConfigError(f"config key 'name' must be one folder name inside path.experiments_root "
                          f"(no '/', not '.' or '..'), got {name!r}")
    train = data['train']
    ranges = {'train.lr_G': (train['lr_G'], 0, None, False),
              'train.beta1': (train['beta1'], 0, 1, True), 'train.beta2': (train['beta2'], 0, 1, True),
              'train.weight_decay_G': (train['weight_decay_G'], 0, None, True),
              'train.gradient_clipping': (train['gradient_clipping'], 0, None, True),
              'train.gaussian_scale': (train['gaussian_scale'], 0, None, True),
              'train.ema_decay': (train['ema_decay'], 0, 1, True),
              'datasets.train.brightness_max': (data['datasets']['train']['brightness_max'], 1, None, True),
              'datasets.train.sigma': (data['datasets']['train']['sigma'], 0, None, True),
              'datasets.val.sigma': (data['datasets']['val']['sigma'], 0, None, True),
              **{f'train.{key}': (train[key], 0, None, True)
                 for key in ('lambda_fit_forw', 'lambda_rec_back', 'lambda_grad_back', 'lambda_ssim_back')}}
    for key, (value, low, high, low_allowed) in ranges.items():
        if value is None:
            continue
        if not math.isfinite(value) or value < low or (value == low and not low_allowed) or \
                (high is not None and value >= high):
            expected = (f'in [{low}, {high})' if high is not None else
                        f'>= {low}' if low_allowed else f'> {low}')
            raise ConfigError(f"config key '{key}' must be a finite number {expected}, got {value}")
    if data['datasets']['train']['n_workers'] < 0:
        raise ConfigError("config key 'datasets.train.n_workers' must be 0 (no worker processes) or "
                          f"more, got {data['datasets']['train']['n_workers']}")


def load_config(path: Optional[str] = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults, then the YAML file (if any), then ``key.sub=value`` overrides; all checked."""
    data = _defaults(SCHEMA)
    if path is not None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'config file not found: {path}')
        with open(path, 'r', encoding='utf-8') as f:
            try:
                loaded = yaml.safe_load(f)
            except yaml.YAMLError as err:
                raise ConfigError(f'{path}: not valid YAML ({err})') from err
        try:
            data = _merge(SCHEMA, loaded or {}, data)
        except ConfigError as err:
            raise ConfigError(f'{path}: {err}') from None
    for text in overrides or ():
        try:
            data = _merge(SCHEMA, _parse_override(text), data)
        except ConfigError as err:
            raise ConfigError(f'override {text!r}: {err}') from None
    _check_consistency(data)
    return Config(data)


def config_yaml(cfg: Config) -> str:
    """The resolved configuration as YAML text (readable back by ``load_config``)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False)


def experiment_dir(cfg: Config) -> str:
    """Folder of one experiment: ``path.experiments_root/name``."""
    return os.path.join(cfg.path.experiments_root, cfg.name)


def scaled_to_world_size(cfg: Config, world_size: int) -> Config:
    """``cfg`` rescaled from ``train.world_size`` cards to ``world_size``, keeping the samples
    seen and the ratio of total batch to learning rate (docs/training.md, scaling rule):
    lr_G x M/N, niter and lr_steps x N/M (rounded), val_freq and save_checkpoint_freq too."""
    data = cfg.to_dict()
    assumed = data['train']['world_size']
    ratio = world_size / assumed
    train = data['train']
    train['lr_G'] = train['lr_G'] * ratio
    for key in ('niter', 'val_freq'):
        train[key] = max(1, round(train[key] / ratio))
    train['lr_steps'] = [max(1, round(step / ratio)) for step in train['lr_steps']]
    data['logger']['save_checkpoint_freq'] = max(1, round(data['logger']['save_checkpoint_freq'] / ratio))
    train['world_size'] = world_size
    _check_consistency(data)
    return Config(data)


def world_size_rule(cfg: Config, world_size: int) -> str:
    """The scaling rule for this run, in words (for the warning when the card count differs)."""
    scaled = scaled_to_world_size(cfg, world_size)
    return (f'lr_G {cfg.train.lr_G:g} -> {scaled.train.lr_G:g}, niter {cfg.train.niter} -> '
            f'{scaled.train.niter}, lr_steps {list(cfg.train.lr_steps)} -> {list(scaled.train.lr_steps)}')
