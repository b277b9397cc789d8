"""The command-line dialect of every entry point: each flag has help and a shown default,
booleans take True/False, no help shows a path of this machine, and scripts import no
script."""
import argparse
import ast
import importlib
from pathlib import Path

import pytest

from apps.cli import HelpFormatter

REPO = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ['predict', 'infer', 'export_model', 'test_denoising_sidd', 'test_denoising_dnd', 'tools.align_steps', 'tools.align_training',
                'train_denoising_1card',
                'train_denoising_4cards', 'generate_patches_sidd', 'generate_lq',
                'extract_valid_patches_sidd', 'tools.convert_torch_weights', 'tools.align_with_torch',
                'tools.make_synthetic_sidd', 'tools.draw_architecture', 'benchmarks.bench_cpu', 'benchmarks.quality', 'benchmarks.bench_costs',
                'test_tipc.compare_results']


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def parser_of(module_name: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser an entry point builds, caught when it parses its arguments."""
    def capture(self, args=None, namespace=None):
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    module = importlib.import_module(module_name)
    entry = getattr(module, 'parse_args', None) or module.main
    with pytest.raises(_Captured) as caught:
        entry([])
    return caught.value.parser


@pytest.mark.parametrize('module_name', ENTRY_POINTS)
def test_every_flag_has_help_and_a_shown_default(module_name, monkeypatch):
    parser = parser_of(module_name, monkeypatch)
    assert parser.formatter_class is HelpFormatter
    formatter = parser._get_formatter()
    flags = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert any(a.dest == 'verbose' for a in flags)
    for action in flags:
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help and len(action.help) > 8, f'{module_name} {name}: no help text'
        shown = formatter._get_help_string(action)
        assert '(default:' in shown or '(required)' in shown, f'{module_name} {name}: no default shown'
        assert not isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)), \
            f'{module_name} {name}: booleans take --flag, --flag True and --flag False'
    text = parser.format_help()
    assert str(REPO) not in text and str(Path.home()) not in text


@pytest.mark.parametrize('module_name', ['predict', 'infer', 'export_model', 'test_denoising_sidd'])
def test_one_spelling_with_tipc_aliases(module_name, monkeypatch):
    parser = parser_of(module_name, monkeypatch)
    strings = {s for a in parser._actions for s in a.option_strings}
    assert {'--device', '--use_gpu', '--use-gpu', '--verbose'} <= strings
    assert not strings & {'--save_dir', '--src', '--dst', '--out'}
    # TIPC's and the earlier reproduction's spellings: aliases on the same flag, not second ones.
    dests = {s: a.dest for a in parser._actions for s in a.option_strings}
    for alias, canonical in (('--batch-size', '--batch_size'), ('--model-dir', '--model_dir'),
                             ('--save-inference-dir', '--save_inference_dir'),
                             ('--noisy-dir', '--input'), ('--clean-dir', '--gt_dir')):
        if alias in strings:
            assert dests[alias] == dests[canonical]


def test_booleans_accept_bare_true_and_false(monkeypatch):
    import predict

    assert predict.parse_args(['--input', 'x', '--self_ensemble']).self_ensemble is True
    assert predict.parse_args(['--input', 'x', '--self_ensemble', 'False']).self_ensemble is False
    assert predict.parse_args(['--input', 'x', '--overwrite', 'True']).overwrite is True
    assert predict.parse_args(['--input', 'x', '--use-gpu', 'False']).use_gpu is False


def imports_of(path: Path) -> set:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_import_downwards_only():
    """scripts/tools -> apps -> training, deploy -> core -> networks, ops, dataloaders, losses,
    config, utils; no module imports a top-level script; utils imports only utils."""
    scripts = {p.stem for p in REPO.glob('*.py')} - {'config', 'losses'}
    project = scripts | {'apps', 'training', 'deploy', 'core', 'ops', 'networks', 'dataloaders',
                         'utils', 'config', 'losses', 'tools', 'benchmarks', 'test_tipc'}
    leaves = {'networks', 'ops', 'dataloaders', 'losses', 'config', 'utils'}
    layers = {'utils': {'utils'}, 'config': set(), 'losses': {'config', 'utils'}, 'ops': {'ops', 'utils'},
              'networks': {'networks', 'config', 'utils'},
              'dataloaders': {'dataloaders', 'utils', 'config'},
              'core': {'core'} | leaves,
              'training': {'training', 'core'} | leaves,
              'deploy': {'deploy', 'core'} | leaves,
              'apps': {'apps', 'training', 'deploy', 'core'} | leaves}
    for folder, allowed in layers.items():
        files = [REPO / f'{folder}.py'] if (REPO / f'{folder}.py').exists() else sorted((REPO / folder).rglob('*.py'))
        for path in files:
            for name in imports_of(path):
                top = name.split('.')[0]
                if top in project:
                    assert top in allowed, f'{path.relative_to(REPO)} imports {name}'
    for path in sorted(REPO.glob('*.py')) + sorted((REPO / 'tools').glob('*.py')) \
            + sorted((REPO / 'benchmarks').glob('*.py')):
        for name in imports_of(path):
            assert name.split('.')[0] not in scripts or name == path.stem, \
                f'{path.relative_to(REPO)} imports the script {name}'
        assert 'sys.path.insert' not in path.read_text(), f'{path.relative_to(REPO)} edits sys.path'


def test_paddle_notices_stay_off_the_console_unless_verbose(tmp_path):
    """A script that imports Paddle prints only its own error line; --verbose lets Paddle speak."""
    import subprocess
    import sys

    command = [sys.executable, 'infer.py', '--model_dir', str(tmp_path / 'absent'),
               '--input', 'docs/invdn_architecture.png', '--result_dir', str(tmp_path / 'out')]
    quiet = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines() == [
        f'error: model directory {tmp_path / "absent"} does not exist; export one with '
        'python export_model.py --weights W --save_inference_dir DIR']
    verbose = subprocess.run(command + ['--verbose'], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert 'ccache' in verbose.stderr


def test_weights_resolution_order(tmp_path, capsys):
    """--weights, else the converted official weights, else pretrained/model_best.pdparams (the
    earlier reproduction's), else the shipped demo model; the line printed says which; none at
    all ends with where the official weights are."""
    from apps.cli import DEFAULT_WEIGHTS, resolve_weights

    with pytest.raises(SystemExit, match='github.com/Yang-Liu1082/InvDN/tree/main/pretrained'):
        resolve_weights(None, root=str(tmp_path))
    official, best, demo = (tmp_path / relative for relative, _ in DEFAULT_WEIGHTS)
    assert best.name == 'model_best.pdparams'
    demo.parent.mkdir(parents=True)
    demo.write_bytes(b'demo')
    assert resolve_weights(None, root=str(tmp_path)) == str(demo)
    assert 'demo model' in capsys.readouterr().out
    best.write_bytes(b'best')
    assert resolve_weights(None, root=str(tmp_path)) == str(best)
    assert 'pretrained/model_best.pdparams' in capsys.readouterr().out
    official.write_bytes(b'official')
    assert resolve_weights(None, root=str(tmp_path)) == str(official)
    assert 'converted official weights' in capsys.readouterr().out
    assert resolve_weights(str(demo), root=str(tmp_path)) == str(demo)
    with pytest.raises(SystemExit, match='missing.pdparams'):
        resolve_weights(str(tmp_path / 'missing.pdparams'), root=str(tmp_path))


def test_importing_a_project_module_or_asking_for_help_prints_nothing_else():
    """Neither Paddle's ccache note nor a glog line nor a path of this machine on import of a
    module of each room (each in a fresh interpreter: Python shows a warning once), nor on --help."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    modules = ['networks.InvDN_model', 'networks.loading', 'dataloaders.LQGTRN_dataset', 'core.denoise',
               'core.loop', 'training.trainer', 'deploy.export', 'deploy.cache', 'apps.models',
               'ops.onednn_conv', 'utils.checkpoint', 'losses', 'config', 'tools.convert_torch_weights',
               'benchmarks.bench_cpu']
    commands = [[sys.executable, '-c', f'import {module}'] for module in modules]
    commands += [[sys.executable, 'extract_valid_patches_sidd.py', '--help'],
                 [sys.executable, '-m', 'tools.convert_torch_weights', '--help']]

    def run(command):
        return command, subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    with ThreadPoolExecutor(2) as pool:
        for command, done in pool.map(run, commands):
            assert done.returncode == 0 and done.stderr == '', (command, done.stderr[-500:])
            if '--help' not in command:
                assert done.stdout == '', (command, done.stdout[-500:])
            else:
                assert done.stdout.startswith('usage:') and sys.prefix not in done.stdout, command
