"""The TIPC configs: the template's 32-line layout (read by line number), flags every script
accepts, and whole_train_whole_infer configured as the paper's training."""
import shlex
import subprocess
from pathlib import Path

import pytest

import export_model
import infer
import test_denoising_sidd
from config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / 'test_tipc' / 'configs' / 'InvDN').glob('train*_infer_python.txt'))
# Line (1-based) -> key of the template's layout (None: a section header or "##").
TEMPLATE = {2: 'model_name', 3: 'python', 4: 'gpu_list', 10: 'train_model_name', 13: 'trainer',
            17: 'eval', 22: 'norm_export', 24: 'train_model', 25: 'infer_export', 27: 'inference',
            28: '--use_gpu', 29: '--batch_size', 30: '--model_dir', 31: '--input', 32: '--benchmark'}
HEADERS = {1: 'train_params', 16: 'eval_params', 19: 'infer_params'}


def lines_of(config: Path) -> list:
    return config.read_text().splitlines()


def parse(config: Path, number: int, mode: str) -> str:
    """The value of line NUMBER for MODE, as the project's runner reads it (common_func.sh)."""
    script = (f'source test_tipc/common_func.sh; '
              f'func_parser_params "$(func_config_line_no {shlex.quote(str(config))} {number})" {mode}')
    return subprocess.run(['bash', '-c', script], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_three_chains_exist():
    assert [c.name for c in CONFIGS] == ['train_amp_infer_python.txt', 'train_fleet_infer_python.txt',
                                         'train_infer_python.txt']


@pytest.mark.parametrize('config', CONFIGS, ids=lambda c: c.name)
def test_layout_is_the_templates(config):
    lines = lines_of(config)
    assert len(lines) >= 32
    for number, section in HEADERS.items():
        assert lines[number - 1].strip('=') == section, (number, lines[number - 1])
    for number, key in TEMPLATE.items():
        assert lines[number - 1].split(':', 1)[0] == key, (number, lines[number - 1])
    # Line 14 is the script of the trainer named on line 13; its script and the others exist.
    trainer = lines[12].split(':', 1)[1]
    assert lines[13].split(':', 1)[0] == trainer
    for number in (14, 17, 22, 25, 27):
        script = lines[number - 1].split(':', 1)[1].split()[0]
        assert (REPO / script).is_file(), (number, script)
    assert lines[11] == lines[14] == lines[17] == lines[22] == lines[25] == '##'


@pytest.mark.parametrize('config', CONFIGS, ids=lambda c: c.name)
def test_every_script_accepts_the_flags_the_template_passes(config):
    """What the template's script appends (line keys = values) parses in each script."""
    lines = lines_of(config)

    def flags(number: int) -> list:
        return lines[number - 1].split(':', 1)[1].split()[1:]

    weights = 'w.pdparams'
    args = test_denoising_sidd.parse_args(flags(17) + [f'--weights={weights}'])
    assert args.weights == weights and args.self_ensemble is True
    args = export_model.parse_args(flags(22) + [f'--weights={weights}', '--save_inference_dir=out'])
    assert args.save_inference_dir == 'out'
    args = infer.parse_args(flags(27) + ['--use_gpu=True', '--model_dir=m', '--batch_size=1',
                                         '--benchmark=True', '--enable_mkldnn=False', '--cpu_threads=1',
                                         '--precision=bf16'])
    assert (args.use_gpu, args.model_dir, args.benchmark, args.enable_mkldnn, args.cpu_threads,
            args.precision) == (True, 'm', True, False, 1, 'bf16')
    assert args.input is None  # the template gives no image in training modes: docs/demo


def training_overrides(config: Path, mode: str) -> list:
    """The -o overrides the runner gives the trainer of line 14 in MODE."""
    lines = lines_of(config)
    script = lines[13].split(':', 1)[1].split()
    overrides = script[script.index('-o') + 1:]
    for number in (6, 7, 8):
        key = lines[number - 1].split(':', 1)[0]
        overrides.append(f'{key}={parse(config, number, mode)}')
    return script[script.index('-c') + 1], overrides


def test_modes_parse_by_line_number():
    config = REPO / 'test_tipc' / 'configs' / 'InvDN' / 'train_infer_python.txt'
    assert parse(config, 6, 'lite_train_lite_infer') == '10'
    assert parse(config, 8, 'lite_train_lite_infer') == '1'
    assert parse(config, 6, 'whole_train_whole_infer') == '600000'
    assert parse(config, 4, 'lite_train_lite_infer') == '0|0,1'
    assert parse(config, 2, 'whole_infer') == 'InvDN'


def test_whole_train_whole_infer_is_the_papers_training():
    """Line 14 plus the mode's values give training_1card.yml's paper settings: only the data
    folders and the output folder differ."""
    config = REPO / 'test_tipc' / 'configs' / 'InvDN' / 'train_infer_python.txt'
    yml, overrides = training_overrides(config, 'whole_train_whole_infer')
    tipc = load_config(str(REPO / yml), overrides).to_dict()
    paper = load_config(str(REPO / yml)).to_dict()
    for cfg in (tipc, paper):
        for split in ('train', 'val'):
            del cfg['datasets'][split]['dataroot']
        del cfg['path']['experiments_root']
    assert tipc == paper
    assert paper['train']['niter'] == 600000 and paper['datasets']['train']['batch_size'] == 14


def test_whole_train_whole_infer_training_command_starts(synthetic_sidd, tmp_path):
    """The mode's training command (line 14 + lines 6-8) runs in the trainer; shortened here
    to one iteration of a small network on synthetic data (later -o keys win)."""
    from apps import train as training_script

    config = REPO / 'test_tipc' / 'configs' / 'InvDN' / 'train_infer_python.txt'
    yml, overrides = training_overrides(config, 'whole_train_whole_infer')
    training_script.main(yml, 'test', ['-c', yml, '-o', *overrides,
                                f'path.experiments_root={tmp_path}', 'device=cpu',
                                f'datasets.train.dataroot={synthetic_sidd / "train"}',
                                f'datasets.val.dataroot={synthetic_sidd / "val"}',
                                'train.niter=1', 'network_G.block_num=[1,1]',
                                'datasets.train.GT_size=32', 'datasets.train.batch_size=2',
                                'datasets.train.n_workers=0'])
    lines = lines_of(config)
    assert (tmp_path / lines[9].split(':', 1)[1]).is_file()  # line 10: the checkpoint name
