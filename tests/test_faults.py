"""Faults: killed, damaged, full, concurrent (docs/reliability.md).

The fault-injection runner's small form runs here (tools/fault_injection.py --quick); the
long form (20 kill points) is run by hand. The other tests check each guarantee directly.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

import generate_lq
import generate_patches_sidd
import predict
import train_denoising_1card
from config import ConfigError, load_config
from tools import fault_injection
from tools.make_synthetic_sidd import make_medium_tree
from utils import durable
from utils.checkpoint import (CheckpointError, WeightsError, find_resumable, iteration_checkpoints,
                              load_weights_file, read_training_checkpoint,
                              save_training_checkpoint)
from utils.durable import atomic_path, atomic_write_bytes, is_temp_name, remove_stale_temps
from utils.image_io import read_image_raw, write_image
from utils.run_lock import LockedError, RunLock, is_locked

REPO = Path(__file__).resolve().parents[1]


def test_fault_injection_quick_form_survives_everything(tmp_path, capsys):
    rows = fault_injection.main(['--quick', '--workdir', str(tmp_path)])
    table = capsys.readouterr().out
    assert '| fault | trials | survived | data lost |' in table
    assert fault_injection.failed(rows) == [], table
    kills = rows[0]
    assert kills.fault.startswith('kill -9 training') and kills.trials == 2 and kills.lost == 0
    assert all(r.trials >= 1 for r in rows if r.fault != 'disk full'), table


def _checkpoint(iteration: int, value: float = 1.0) -> dict:
    return {'state_dict': {'w': paddle.full([128, 128], value)}, 'optimizer': {'m': paddle.zeros([2])},
            'lr_scheduler': {'last_epoch': iteration}, 'iter': iteration, 'best_psnr': 30.5,
            'rng_states': [], 'config': {}, 'history': {'loss': {'total': [[iteration, 0.5]]}}}


def test_checkpoints_keep_the_last_n_and_resume_falls_back_past_damaged_ones(tmp_path):
    for it in range(1, 5):
        save_training_checkpoint(_checkpoint(it, it), str(tmp_path), keep=2)
    assert [it for it, _ in iteration_checkpoints(str(tmp_path))] == [3, 4]
    latest = tmp_path / 'model_latest.pdparams'
    assert os.path.samefile(latest, tmp_path / 'model_iter_00000004.pdparams')  # a link, no copy
    path, state, warnings = find_resumable(str(tmp_path))
    assert path == str(latest) and state['iter'] == 4 and not warnings
    np.testing.assert_array_equal(np.asarray(state['state_dict']['w']), np.full((128, 128), 4.0))

    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # paddle.load alone accepts this file
    latest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r'model_latest\.pdparams is corrupted.*SHA-256'):
        read_training_checkpoint(str(latest))
    path, state, warnings = find_resumable(str(tmp_path))
    assert state['iter'] == 3 and path.endswith('model_iter_00000003.pdparams')
    assert len(warnings) == 1 and 'model_latest.pdparams' in warnings[0]

    os.truncate(path, 100)
    assert find_resumable(str(tmp_path))[0] is None
    with pytest.raises(CheckpointError, match=r'model_iter_00000003\.pdparams \(100 bytes\).*truncated'):
        read_training_checkpoint(path)
    os.truncate(path, 0)
    with pytest.raises(WeightsError, match=r'model_iter_00000003\.pdparams is empty'):
        load_weights_file(path)


def test_atomic_write_flushes_file_and_directory_around_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, 'fsync', lambda fd: events.append(
        'dir' if os.path.isdir(os.readlink(f'/proc/self/fd/{fd}')) else 'file') or real_fsync(fd))
    monkeypatch.setattr(os, 'replace', lambda a, b: events.append('rename') or real_replace(a, b))
    atomic_write_bytes(str(tmp_path / 'x.bin'), b'data')
    assert events == ['file', 'dir', 'rename', 'dir']
    assert (tmp_path / 'x.bin').read_bytes() == b'data' and os.listdir(tmp_path) == ['x.bin']


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / 'model.pdparams'
    target.write_bytes(b'previous')
    with pytest.raises(RuntimeError), atomic_path(str(target)) as tmp:
        Path(tmp).write_bytes(b'half')
        raise RuntimeError('killed here')
    assert target.read_bytes() == b'previous' and os.listdir(tmp_path) == ['model.pdparams']
    full = durable.disk_full_error(str(target), OSError(28, 'No space left on device'))
    assert isinstance(full, durable.DiskFullError) and str(target) in str(full) and 'disk full' in str(full)


def test_stale_temporary_files_are_recognised_and_only_they_removed(tmp_path):
    with atomic_path(str(tmp_path / 'model_latest.pdparams')) as tmp:
        Path(tmp).write_bytes(b'x')
        assert is_temp_name(os.path.basename(tmp))
    leftover = tmp_path / '.model_iter_00000007.pdparams.ab12cd_9.tmp'  # a killed writer's
    leftover.write_bytes(b'x')
    (tmp_path / '.hidden_user_file').write_bytes(b'keep me')
    (tmp_path / 'notes.tmp').write_bytes(b'keep me too')
    assert remove_stale_temps(str(tmp_path)) == [leftover.name]
    assert sorted(os.listdir(tmp_path)) == ['.hidden_user_file', 'model_latest.pdparams', 'notes.tmp']


LOCK_HOLDER = '''
import sys, time
from utils.run_lock import RunLock
RunLock(sys.argv[1]).acquire()
print('locked', flush=True)
time.sleep(60)
'''


def test_lock_refuses_a_second_owner_and_takes_over_a_dead_ones(tmp_path):
    folder = str(tmp_path / 'exp')
    holder = subprocess.Popen([sys.executable, '-c', LOCK_HOLDER, folder], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        assert is_locked(folder)
        with pytest.raises(LockedError, match=rf'in use by another training run \(pid {holder.pid} '):
            RunLock(folder).acquire()
    finally:
        holder.kill()  # kill -9: no release
        holder.wait()
    assert not is_locked(folder)
    lock = RunLock(folder)
    lock.acquire()
    assert f'pid {holder.pid} ' in lock.stale_owner  # the dead owner is named
    lock.release()
    again = RunLock(folder)
    again.acquire()
    assert again.stale_owner == ''  # a clean release leaves no owner behind
    again.release()


def test_keep_checkpoints_is_checked():
    assert load_config(None, ['logger.keep_checkpoints=0']).logger.keep_checkpoints == 0
    with pytest.raises(ConfigError, match="'logger.keep_checkpoints' must be 0"):
        load_config(None, ['logger.keep_checkpoints=-1'])
    with pytest.raises(ConfigError, match="'logger.keep_checkpoints' has value 'two'"):
        load_config(None, ['logger.keep_checkpoints=two'])


def test_training_script_bad_config_and_resume_without_readable_checkpoint(synthetic_sidd, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_denoising_1card.main(['-o', 'train.niter=many'])
    assert "error: override 'train.niter=many'" in str(exc.value.code)
    models = tmp_path / 'exp' / 'models'
    models.mkdir(parents=True)
    (models / 'model_latest.pdparams').write_bytes(b'')
    with pytest.raises(SystemExit) as exc:
        train_denoising_1card.main(['-o', f'path.experiments_root={tmp_path}', 'name=exp',
                                    'device=cpu', f'datasets.train.dataroot={synthetic_sidd / "train"}',
                                    f'datasets.val.dataroot={synthetic_sidd / "val"}',
                                    'datasets.train.GT_size=32', 'datasets.train.batch_size=2', '--resume'])
    message = str(exc.value.code)
    assert 'no readable checkpoint' in message and 'model_latest.pdparams is empty' in message
    assert 'Traceback' not in capsys.readouterr().err


@pytest.fixture(scope='module')
def medium(tmp_path_factory):
    root = tmp_path_factory.mktemp('medium')
    make_medium_tree(str(root / 'Data'), num_scenes=2, height=120, width=160)
    return root / 'Data'


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*'))
            if p.is_file() and not p.name.startswith('.')}


def test_patch_generation_resumes_to_the_files_of_an_uninterrupted_run(medium, tmp_path):
    args = ['--input', str(medium), '--ps', '32', '--num_patches', '6', '--num_workers', '0']
    generate_patches_sidd.main(args + ['--result_dir', str(tmp_path / 'ref')])
    expected = _files(tmp_path / 'ref')
    out = tmp_path / 'out'
    generate_patches_sidd.main(args + ['--result_dir', str(out)])
    # What a kill leaves: some patches missing, a temporary file, never a partial final name.
    for name in ('1_3.PNG', '0_5.PNG'):
        (out / 'GT' / name).unlink()
    (out / 'Noisy' / '1_4.PNG').unlink()
    (out / 'GT' / '.1_3.PNG.k2j4h8_x.tmp').write_bytes(b'partial')
    before = (out / 'GT' / '0_0.PNG').stat().st_mtime_ns
    with pytest.raises(SystemExit, match='--resume'):
        generate_patches_sidd.main(args + ['--result_dir', str(out)])
    generate_patches_sidd.main(args + ['--result_dir', str(out), '--resume'])
    assert _files(out) == expected
    assert (out / 'GT' / '0_0.PNG').stat().st_mtime_ns == before  # complete files are kept
    with pytest.raises(SystemExit, match=r'--resume: .* other settings \(seed: 0 -> 3\)'):
        generate_patches_sidd.main(args + ['--result_dir', str(out), '--resume', '--seed', '3'])


def test_generate_lq_reports_every_bad_file_and_writes_the_good_ones(tmp_path):
    rng = np.random.default_rng(0)
    gt = tmp_path / 'GT'
    for name in ('a.png', 'c.png'):
        write_image(str(gt / name), rng.integers(0, 256, (16, 16, 3)).astype(np.uint8))
    (gt / 'b.png').write_bytes(b'')
    (gt / 'd.png').write_bytes(b'text, not an image')
    with pytest.raises(SystemExit) as exc:
        generate_lq.main(['--input', str(tmp_path), '--num_workers', '0'])
    message = str(exc.value.code)
    assert '2 of 4' in message and 'b.png' in message and 'd.png' in message
    assert sorted(os.listdir(tmp_path / 'LQ')) == ['a.png', 'c.png']
    assert read_image_raw(str(tmp_path / 'LQ' / 'a.png')).shape == (4, 4, 3)


def test_predict_names_every_bad_input_and_denoises_the_others(small_model_file, tmp_path):
    _, weights = small_model_file
    rng = np.random.default_rng(2)
    inputs = tmp_path / 'in'
    good = {'rgb.png': rng.integers(0, 256, (24, 20, 3)).astype(np.uint8),
            'grey.png': rng.integers(0, 256, (17, 23)).astype(np.uint8),
            'rgba.png': rng.integers(0, 256, (16, 16, 4)).astype(np.uint8),
            'deep.png': rng.integers(0, 65536, (13, 9, 3)).astype(np.uint16),
            'tiny.png': rng.integers(0, 256, (1, 2, 3)).astype(np.uint8)}
    inputs.mkdir()
    for name, img in good.items():
        assert __import__('cv2').imwrite(str(inputs / name), img)
    (inputs / 'empty.png').write_bytes(b'')
    (inputs / 'text.jpg').write_bytes(b'hello')
    (inputs / 'cut.png').write_bytes((inputs / 'rgb.png').read_bytes()[:60])
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exc:
        predict.main(['--input', str(inputs), '--result_dir', str(out), '--weights', weights,
                      '--backend', 'dygraph'])
    message = str(exc.value.code)
    assert all(name in message for name in ('empty.png', 'text.jpg', 'cut.png')), message
    assert sorted(n for n in os.listdir(out) if not n.startswith('.')) == sorted(good)
    for name, img in good.items():
        assert read_image_raw(str(out / name)).shape[:2] == img.shape[:2]
    assert read_image_raw(str(out / 'deep.png')).dtype == np.uint16

    cut = tmp_path / 'cut.pdparams'
    cut.write_bytes(Path(weights).read_bytes()[:300])
    bare = tmp_path / 'bare_small.pdparams'  # block_num [1, 1] weights, no config: paper size assumed
    paddle.save(paddle.load(weights)['state_dict'], str(bare))
    blocker = tmp_path / 'a_file'
    blocker.write_bytes(b'')
    for extra, expected in ((['--weights', str(cut), '--result_dir', str(tmp_path / 'o2')],
                             'cut.pdparams (300 bytes) cannot be read'),
                            (['--weights', weights, '--result_dir', str(blocker / 'sub')],
                             'a_file'),
                            (['--weights', str(bare), '--result_dir', str(tmp_path / 'o3')],
                             'bare_small.pdparams does not match the model'),
                            (['--weights', weights, '--result_dir', str(out)], '--overwrite')):
        with pytest.raises(SystemExit) as exc:
            predict.main(['--input', str(inputs / 'rgb.png'), '--backend', 'dygraph', *extra])
        assert exc.value.code not in (0, None) and expected in str(exc.value.code), exc.value.code


def test_a_training_image_broken_mid_run_stops_training_naming_it(synthetic_sidd, tmp_path):
    from training.errors import TrainingError
    from training.trainer import Trainer
    data = tmp_path / 'data'
    shutil.copytree(synthetic_sidd, data)
    cfg = load_config(None, ['device=cpu', 'name=broken', f'path.experiments_root={tmp_path}',
                             f'datasets.train.dataroot={data / "train"}',
                             f'datasets.val.dataroot={data / "val"}', 'network_G.block_num=[1,1]',
                             'datasets.train.GT_size=32', 'datasets.train.batch_size=4',
                             'datasets.train.n_workers=0', 'train.niter=2'])
    trainer = Trainer(cfg)
    try:
        (data / 'train' / 'Noisy' / '0_2.PNG').write_bytes(b'broken')  # after the start checks
        with pytest.raises(TrainingError, match=r'at iteration 1: cannot decode image .*0_2\.PNG'):
            trainer.run()
    finally:
        trainer.close()


def test_validation_block_extraction_resumes(tmp_path):
    import extract_valid_patches_sidd
    from tools.make_synthetic_sidd import make_validation_mat
    make_validation_mat(str(tmp_path / 'mat'), num_images=2, num_blocks=3, size=16)
    args = ['--input', str(tmp_path / 'mat'), '--num_workers', '0']
    extract_valid_patches_sidd.main(args + ['--result_dir', str(tmp_path / 'ref')])
    out = tmp_path / 'out'
    extract_valid_patches_sidd.main(args + ['--result_dir', str(out)])
    (out / 'Noisy' / sorted(os.listdir(out / 'Noisy'))[4]).unlink()
    extract_valid_patches_sidd.main(args + ['--result_dir', str(out), '--resume'])
    assert _files(out) == _files(tmp_path / 'ref') and len(_files(out)) == 12
