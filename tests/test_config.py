"""config.py and the two training YAML files."""
import argparse
from pathlib import Path

import pytest
import yaml

from config import SCHEMA, ConfigError, config_yaml, experiment_dir, load_config, paper_default
from apps.cli import add_config_args, config_from_args

ROOT = Path(__file__).resolve().parents[1]
ONE_CARD, FOUR_CARDS = str(ROOT / 'training_1card.yml'), str(ROOT / 'training_4cards.yml')


def _leaf_keys(tree, prefix=''):
    keys = set()
    for key, value in tree.items():
        keys |= _leaf_keys(value, f'{prefix}{key}.') if isinstance(value, dict) else {prefix + key}
    return keys


@pytest.mark.parametrize('path', [ONE_CARD, FOUR_CARDS])
def test_yaml_files_spell_out_every_schema_key(path):
    with open(path, encoding='utf-8') as f:
        assert _leaf_keys(yaml.safe_load(f)) == _leaf_keys(SCHEMA)


def test_one_card_yaml_holds_the_paper_settings():
    cfg = load_config(ONE_CARD)
    assert cfg.scale == 4 and cfg.network_G.block_num == [8, 8]
    assert cfg.datasets.train.batch_size == 14 and cfg.datasets.train.GT_size == 144
    assert cfg.train.lr_G == pytest.approx(2e-4) and cfg.train.beta2 == pytest.approx(0.999)
    assert cfg.train.niter == 600000
    assert cfg.train.lr_steps == [100000, 200000, 300000, 400000, 500000]
    assert cfg.train.weight_decay_G == pytest.approx(1e-8)
    assert (cfg.train.lambda_fit_forw, cfg.train.lambda_rec_back) == (16.0, 1.0)
    assert (cfg.train.pixel_criterion_forw, cfg.train.pixel_criterion_back) == ('l2', 'l1')


def test_four_cards_yaml_follows_the_scaling_rule():
    one, four, cards = load_config(ONE_CARD), load_config(FOUR_CARDS), 4
    assert four.datasets.train.batch_size == one.datasets.train.batch_size  # per card
    total_one = one.datasets.train.batch_size
    total_four = cards * four.datasets.train.batch_size
    assert total_four * four.train.niter == total_one * one.train.niter
    assert four.train.lr_G / total_four == pytest.approx(one.train.lr_G / total_one)
    assert [s * cards for s in four.train.lr_steps] == one.train.lr_steps


def test_overrides_are_parsed_as_yaml():
    cfg = load_config(ONE_CARD, ['network_G.block_num=[1,1]', 'train.lr_G=1e-3',
                                 'datasets.train.use_flip=false', 'path.resume_state=~', 'name=demo'])
    assert cfg.network_G.block_num == [1, 1]
    assert cfg.train.lr_G == pytest.approx(1e-3) and isinstance(cfg.train.lr_G, float)
    assert cfg.datasets.train.use_flip is False and cfg.path.resume_state is None
    assert experiment_dir(cfg) == str(Path('experiments') / 'demo')


def test_numbers_are_coerced_where_unambiguous():
    cfg = load_config(None, ['train.lambda_fit_forw=16', 'train.niter=6e5', 'train.val_freq=5000.0'])
    assert cfg.train.lambda_fit_forw == 16.0 and isinstance(cfg.train.lambda_fit_forw, float)
    assert cfg.train.niter == 600000 and isinstance(cfg.train.niter, int)
    assert cfg.train.val_freq == 5000 and isinstance(cfg.train.val_freq, int)


def test_unknown_key_names_it_and_the_closest_known_key(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.lrG.*'lr_G'"):
        load_config(ONE_CARD, ['train.lrG=1e-3'])
    bad = tmp_path / 'bad.yml'
    bad.write_text('datasets:\n  train:\n    batchsize: 8\n')
    with pytest.raises(ConfigError, match=r"bad\.yml.*datasets\.train\.batchsize.*'batch_size'"):
        load_config(str(bad))


@pytest.mark.parametrize('override, expected', [
    ('train.niter=abc', r"'train\.niter'.*'abc'.*integer"),
    ('train.niter=10.5', r"'train\.niter'.*10\.5.*integer"),
    ('datasets.train.use_flip=1', r"'datasets\.train\.use_flip'.*1.*true or false"),
    ('train.lr_G=fast', r"'train\.lr_G'.*'fast'.*number"),
    ('network_G.block_num=8', r"'network_G\.block_num'.*list of integers"),
    ('device=tpu', r"'device'.*'tpu'.*auto"),
    ('train.manual_seed=~', r"'train\.manual_seed'.*null"),
    ('datasets.train=3', r"'datasets\.train'.*mapping"),
])
def test_wrong_type_names_key_value_and_expectation(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(ONE_CARD, [override])


@pytest.mark.parametrize('override, expected', [
    ('scale=2', 'network_G.scale'),
    ('network_G.block_num=[8,8,8]', 'log2'),
    ('datasets.train.GT_size=146', 'multiple of scale'),
    ('train.lr_steps=[2,1]', 'increasing'),
    ('train.niter', 'key.sub=value'),
    ('train.niter=0', "'train.niter' must be a positive integer"),
    ('logger.print_freq=-1', "'logger.print_freq' must be a positive integer"),
    ('datasets.train.batch_size=0', "'datasets.train.batch_size' must be a positive"),
])
def test_inconsistent_settings_are_errors(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, [override])


def test_saved_config_loads_back_identically(tmp_path):
    cfg = load_config(FOUR_CARDS, ['network_G.block_num=[1,1]', 'train.gradient_clipping=~'])
    (tmp_path / 'config.yml').write_text(config_yaml(cfg))
    assert load_config(str(tmp_path / 'config.yml')).to_dict() == cfg.to_dict()


def test_config_is_read_only_and_reports_missing_keys():
    cfg = load_config(None)
    with pytest.raises(AttributeError):
        cfg.name = 'other'
    with pytest.raises(AttributeError, match=r'train\.nope'):
        _ = cfg.train.nope
    cfg.to_dict()['train']['lr_G'] = 1.0  # a copy: the configuration itself is unchanged
    assert cfg.train.lr_G == pytest.approx(2e-4)


def test_command_line_arguments():
    parser = argparse.ArgumentParser()
    add_config_args(parser, ONE_CARD)
    args = parser.parse_args(['-o', 'train.niter=10', 'logger.print_freq=1', '--opt', 'name=x'])
    cfg = config_from_args(args)
    assert (cfg.train.niter, cfg.logger.print_freq, cfg.name) == (10, 1, 'x')
    assert cfg.train.lr_G == pytest.approx(2e-4)
    with pytest.raises(FileNotFoundError, match='missing.yml'):
        config_from_args(parser.parse_args(['-c', 'missing.yml']))


def test_paper_defaults_live_in_the_schema_only():
    """losses.py and the scripts read the paper's settings from config.SCHEMA."""
    import inspect

    from losses import InvDNLoss

    assert paper_default('train.lambda_fit_forw') == SCHEMA['train']['lambda_fit_forw'].default == 16.0
    assert paper_default('network_G') == {'in_nc': 3, 'out_nc': 3, 'block_num': [8, 8], 'scale': 4}
    signature = inspect.signature(InvDNLoss.__init__)
    for key in InvDNLoss.OPTIONS:
        assert signature.parameters[key].default == paper_default(f'train.{key}')
    with pytest.raises(KeyError, match='lr_G'):
        paper_default('train.lrG')


def test_default_config_is_found_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    add_config_args(parser, 'training_4cards.yml')
    assert config_from_args(parser.parse_args([])).train.lr_G == pytest.approx(8e-4)


def test_cpu_demo_config_keeps_the_paper_model_and_objective():
    """training_cpu_demo.yml departs from the paper in data, batch, crop, schedule, brightness
    augmentation and weight averaging only; the paper's configurations have neither of the
    last two."""
    demo = load_config(str(ROOT / 'training_cpu_demo.yml'))
    assert demo.network_G.to_dict() == paper_default('network_G')
    for key in ('lr_G', 'beta1', 'beta2', 'weight_decay_G', 'gradient_clipping', 'lambda_fit_forw',
                'lambda_rec_back', 'lambda_grad_back', 'lambda_ssim_back', 'pixel_criterion_forw',
                'pixel_criterion_back', 'gaussian_scale', 'lr_gamma'):
        assert demo.train[key] == paper_default(f'train.{key}'), key
    assert (demo.datasets.train.batch_size, demo.datasets.train.GT_size) == (4, 96)
    for name in ('training_1card.yml', 'training_4cards.yml'):
        paper = load_config(str(ROOT / name))
        assert (paper.train.ema_decay, paper.datasets.train.brightness_max) == (0, 1) == (
            paper_default('train.ema_decay'), paper_default('datasets.train.brightness_max'))


@pytest.mark.parametrize('override,match', [
    ('name=../x', "'name' must be one folder name"), ('name=a/b', "'name' must be one folder name"),
    ('name=..', "'name' must be one folder name"),
    ('train.lr_G=-0.1', "'train.lr_G' must be a finite number > 0, got -0.1"),
    ('train.lr_G=0', "'train.lr_G' must be a finite number > 0"),
    ('train.beta2=1.5', r"'train.beta2' must be a finite number in \[0, 1\)"),
    ('train.weight_decay_G=-1', "'train.weight_decay_G' must be a finite number >= 0"),
    ('train.gaussian_scale=.nan', "'train.gaussian_scale' must be a finite number >= 0"),
    ('train.lambda_rec_back=-1', "'train.lambda_rec_back' must be a finite number >= 0"),
    ('datasets.train.sigma=-5', "'datasets.train.sigma' must be a finite number >= 0"),
    ('datasets.train.n_workers=-1', "'datasets.train.n_workers' must be 0"),
    ('train.ema_decay=1', r"'train.ema_decay' must be a finite number in \[0, 1\)"),
    ('datasets.train.brightness_max=0.5', "'datasets.train.brightness_max' must be a finite number >= 1")])
def test_values_out_of_range_are_refused_by_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_a_name_outside_the_experiments_root_is_refused_before_anything_is_written(tmp_path):
    import train_denoising_1card

    with pytest.raises(SystemExit, match="'name' must be one folder name"):
        train_denoising_1card.main(['-o', f'path.experiments_root={tmp_path / "root"}', 'name=../escaped',
                                    'device=cpu'])
    assert not (tmp_path / 'escaped').exists() and not (tmp_path / 'root').exists()
