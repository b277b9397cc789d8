"""What would break or slow a multi-GPU run, exercised on CPU: RNG states of another GPU
count, the CPU choice under the launcher, the shared experiment folder, the world size,
validation that fails, split validation, host syncs, the GPU flags."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from config import load_config, scaled_to_world_size
from training import distributed
from training.devices import gpu_flags
from training.errors import TrainingError
from training.trainer import Trainer, train
from training.validation import validate

REPO = Path(__file__).resolve().parents[1]


def overrides(data: Path, root: Path, name: str, *extra: str) -> list:
    return ['device=cpu', f'name={name}', f'path.experiments_root={root}',
            f'datasets.train.dataroot={data / "train"}', f'datasets.val.dataroot={data / "val"}',
            'network_G.block_num=[1,1]', 'datasets.train.GT_size=32', 'datasets.train.batch_size=2',
            'datasets.train.n_workers=0', 'logger.print_freq=1', *extra]


def config(data: Path, root: Path, name: str, *extra: str):
    return load_config(None, overrides(data, root, name, *extra))


def copy_data(source: Path, target: Path) -> Path:
    for path in source.rglob('*'):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())
    return target


def checkpoint_of(root: Path, name: str) -> dict:
    return paddle.load(str(root / name / 'models' / 'model_latest.pdparams'))


def test_rng_states_of_another_gpu_count_warn_and_reseed(synthetic_sidd, tmp_path):
    """A checkpoint whose Paddle state is one generator per visible GPU (as
    paddle.get_rng_state() saves on an 8-GPU box) resumes with a warning, not a traceback."""
    train(config(synthetic_sidd, tmp_path, 'forged', 'train.niter=2', 'train.val_freq=100'))
    path = tmp_path / 'forged' / 'models' / 'model_latest.pdparams'
    state = paddle.load(str(path))
    rng = state['rng_states'][0]
    state['rng_states'] = [{'python': rng['python'], 'numpy': rng['numpy'],
                            'paddle': [rng['paddle_cpu']] * 8}]
    paddle.save(state, str(path))
    train(config(synthetic_sidd, tmp_path, 'forged', 'train.niter=3', 'train.val_freq=100'), resume=True)
    log = (tmp_path / 'forged' / 'train.log').read_text()
    assert 'the checkpoint holds 8 Paddle generator state(s) and this process has 1' in log
    assert checkpoint_of(tmp_path, 'forged')['iter'] == 3


def test_earlier_single_state_checkpoints_resume_exactly(synthetic_sidd, tmp_path):
    """Checkpoints written before per-rank states (one CPU state in a list) still resume
    exactly, e.g. the demo model's training run."""
    train(config(synthetic_sidd, tmp_path, 'full', 'train.niter=4', 'train.val_freq=100'))
    train(config(synthetic_sidd, tmp_path, 'old', 'train.niter=2', 'train.val_freq=100'))
    path = tmp_path / 'old' / 'models' / 'model_latest.pdparams'
    state = paddle.load(str(path))
    rng = state['rng_states'][0]
    state['rng_states'] = [{'python': rng['python'], 'numpy': rng['numpy'], 'paddle': [rng['paddle_cpu']]}]
    paddle.save(state, str(path))
    train(config(synthetic_sidd, tmp_path, 'old', 'train.niter=4', 'train.val_freq=100'), resume=True)
    full, resumed = checkpoint_of(tmp_path, 'full'), checkpoint_of(tmp_path, 'old')
    assert 'generator state' not in (tmp_path / 'old' / 'train.log').read_text()
    for key, value in full['state_dict'].items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(resumed['state_dict'][key]))


def test_cpu_choice_holds_under_the_launcher(monkeypatch):
    calls = []
    monkeypatch.delenv('PADDLE_DISTRI_BACKEND', raising=False)
    monkeypatch.setattr(distributed.dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(distributed.dist, 'init_parallel_env',
                        lambda: calls.append(os.environ.get('PADDLE_DISTRI_BACKEND')))
    distributed.init_process_group('gpu')
    distributed.init_process_group('cpu')
    assert calls == [None, 'gloo']


def test_a_rank_that_does_not_see_the_folder_is_named(tmp_path, monkeypatch):
    """Rank 1 of a multi-node run without a shared file system finds another token (or none)."""
    (tmp_path / distributed.SHARED_FOLDER_TOKEN).write_text('written on this node by another run')
    answers = iter([['token of rank 0 on another node'], [True, False]])
    monkeypatch.setattr(distributed, 'gather', lambda obj, world_size: next(answers))
    message = distributed.check_shared_folder(str(tmp_path), rank=1, world_size=2)
    assert 'ranks [1] do not see the experiment folder' in message and 'shared' in message
    assert distributed.check_shared_folder(str(tmp_path), rank=0, world_size=1) is None


def test_world_size_other_than_the_configured_one_warns_with_the_rule(synthetic_sidd, tmp_path):
    cfg = config(synthetic_sidd, tmp_path, 'four', 'train.world_size=4', 'train.niter=1',
                 'train.val_freq=100', 'train.lr_G=8e-4', 'train.lr_steps=[40,80]')
    train(cfg)
    log = (tmp_path / 'four' / 'train.log').read_text()
    assert 'set for train.world_size = 4 card(s) and this run has 1' in log
    assert 'lr_G 0.0008 -> 0.0002, niter 1 -> 4, lr_steps [40, 80] -> [160, 320]' in log
    scaled = scaled_to_world_size(load_config(str(REPO / 'training_4cards.yml')), 8)
    assert scaled.train.lr_G == pytest.approx(1.6e-3)
    assert (scaled.train.niter, list(scaled.train.lr_steps)) == (75000, [12500, 25000, 37500, 50000, 62500])
    assert scaled.train.world_size == 8


def test_unusable_validation_block_stops_before_training(synthetic_sidd, tmp_path):
    data = copy_data(synthetic_sidd, tmp_path / 'data')
    (data / 'val' / 'GT' / '0_1.PNG').write_bytes(b'truncated')
    with pytest.raises(TrainingError, match=r'(?s)1 validation pair.*nothing was trained.*0_1\.PNG'):
        train(config(data, tmp_path, 'badval', 'train.niter=2'))
    assert not (tmp_path / 'badval' / 'models' / 'model_latest.pdparams').exists()


def test_validation_failure_during_training_is_logged_and_training_goes_on(synthetic_sidd, tmp_path):
    data = copy_data(synthetic_sidd, tmp_path / 'data')
    with paddle.utils.unique_name.guard():
        trainer = Trainer(config(data, tmp_path, 'midrun', 'train.niter=4', 'train.val_freq=2',
                                 'logger.save_checkpoint_freq=2'))
        (data / 'val' / 'Noisy' / '0_0.PNG').write_bytes(b'truncated after the start')
        try:
            trainer.run()
        finally:
            trainer.close()
    log = (tmp_path / 'midrun' / 'train.log').read_text()
    assert 'validation failed, training continues' in log and '0_0.PNG' in log
    assert checkpoint_of(tmp_path, 'midrun')['iter'] == 4


def test_non_finite_loss_found_at_the_sync_point_is_never_saved(synthetic_sidd, tmp_path):
    """Loss terms are read every print_freq iterations; the NaN of iteration 2 is reported
    at the sync point of iteration 4 with its own iteration, and no checkpoint holds it."""
    cfg = config(synthetic_sidd, tmp_path, 'late', 'train.niter=8', 'train.lr_G=1e30',
                 'logger.print_freq=4', 'logger.save_checkpoint_freq=4', 'train.val_freq=100')
    with pytest.raises(TrainingError, match='non-finite loss at iteration 2 .*stopped at iteration 4'):
        train(cfg)
    assert not (tmp_path / 'late' / 'models' / 'model_latest.pdparams').exists()


def test_split_validation_equals_one_rank(synthetic_sidd, tmp_path):
    """Two ranks' shares, gathered, give one rank's figures (gather emulated in-process)."""
    cfg = config(synthetic_sidd, tmp_path, 'split', 'train.niter=1')
    with paddle.utils.unique_name.guard():
        trainer = Trainer(cfg)
        try:
            whole, errors = validate(trainer.net, trainer.val_set, cfg)
            shares = []
            original = distributed.gather

            def collect(obj, world_size):
                shares.append(obj)
                return shares if len(shares) == world_size else [obj]

            import training.validation as validation_module
            validation_module.gather = collect
            try:
                validate(trainer.net, trainer.val_set, cfg, rank=0, world_size=2)
                split, split_errors = validate(trainer.net, trainer.val_set, cfg, rank=1, world_size=2)
            finally:
                validation_module.gather = original
        finally:
            trainer.close()
    assert errors == split_errors == []
    assert [r['name'] for r in split.per_image] == [r['name'] for r in whole.per_image]
    assert split.psnr == pytest.approx(whole.psnr, abs=1e-6)
    assert split.ssim == pytest.approx(whole.ssim, abs=1e-6)


def test_gpu_settings_are_explicit(monkeypatch):
    """The flags and switches a GPU run sets (recorded here: the CPU build has no cuDNN flags)."""
    import training.devices as devices_module

    calls = []
    monkeypatch.setattr(devices_module.paddle, 'set_flags', lambda flags: calls.append(flags))
    for switch in ('set_cudnn_switch', 'set_cublas_switch'):
        monkeypatch.setattr(devices_module.paddle.base.core, switch,
                            lambda on, switch=switch: calls.append((switch, on)))
    devices_module.configure_gpu(load_config(None).train)
    assert calls == [{'FLAGS_cudnn_exhaustive_search': True, 'FLAGS_cudnn_deterministic': False},
                     ('set_cudnn_switch', False), ('set_cublas_switch', False)]
    exact = gpu_flags(load_config(None, ['train.deterministic=true']).train)
    assert exact == {'FLAGS_cudnn_exhaustive_search': False, 'FLAGS_cudnn_deterministic': True}
    # Both switches exist in this Paddle (a flag of these names does not).
    assert callable(paddle.base.core.get_cudnn_switch) and callable(paddle.base.core.get_cublas_switch)


def test_scale_flag_rescales_the_run(synthetic_sidd, tmp_path):
    command = [sys.executable, 'train_denoising_1card.py', '--scale_to_world_size', '-o',
               *overrides(synthetic_sidd, tmp_path, 'scaled', 'train.world_size=2', 'train.niter=1',
                          'train.val_freq=100', 'train.lr_G=4e-4', 'train.lr_steps=[50]')]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'rescaled for 1 process(es): lr_G 0.0002, niter 2, lr_steps [100]' in done.stdout
    assert checkpoint_of(tmp_path, 'scaled')['iter'] == 2


def test_a_failing_loader_worker_says_what_to_do(synthetic_sidd, tmp_path):
    """E.g. workers out of shared memory in a Docker container: one error with the remedy."""
    class DyingLoader:
        def __iter__(self):
            raise RuntimeError('DataLoader worker (pid 1234) is killed by signal: Bus error')

    with paddle.utils.unique_name.guard():
        trainer = Trainer(config(synthetic_sidd, tmp_path, 'shm', 'train.niter=2'))
        trainer.loader = DyingLoader()
        try:
            with pytest.raises(TrainingError, match=r'(?s)Bus error.*--shm-size=1g.*use_shared_memory=false'):
                trainer.run()
        finally:
            trainer.close()


def test_a_rank_without_validation_blocks_reports_no_error(synthetic_sidd, tmp_path, monkeypatch):
    """2 blocks on 8 ranks: ranks 2..7 have none and must not make the validation fail."""
    import training.validation as validation_module

    cfg = config(synthetic_sidd, tmp_path, 'many', 'train.niter=1')
    shared = []
    monkeypatch.setattr(validation_module, 'gather', lambda obj, world_size: shared.append(obj) or [obj])
    with paddle.utils.unique_name.guard():
        trainer = Trainer(cfg)
        try:
            validate(trainer.net, trainer.val_set, cfg, rank=5, world_size=8)
        finally:
            trainer.close()
    assert shared[-1] == ([], [])


def test_non_finite_weights_are_never_saved(synthetic_sidd, tmp_path):
    with paddle.utils.unique_name.guard():
        trainer = Trainer(config(synthetic_sidd, tmp_path, 'nanw', 'train.niter=1'))
        try:
            assert trainer._check_weights() == ''
            weight = trainer.net.parameters()[0]
            weight.set_value(np.full(weight.shape, np.nan, np.float32))
            with pytest.raises(TrainingError, match='non-finite weights after iteration 0'):
                trainer._check_weights()
        finally:
            trainer.close()
