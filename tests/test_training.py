"""The training loop: learning, resuming, determinism, checkpoints, NaN guard, two processes."""
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from config import load_config
from networks import build_invnet
from utils.checkpoint import load_weights
from training.errors import TrainingError
from training.optim import build_grad_clip, build_optimizer
from training.trainer import LOSS_TERMS, Trainer, train
from training.validation import validate

REPO = Path(__file__).resolve().parents[1]


def small_overrides(data: Path, root: Path, name: str, *overrides: str) -> list:
    """block_num [1, 1], 32 px crops, batch 2, CPU, one log line per iteration."""
    return ['device=cpu', f'name={name}', f'path.experiments_root={root}',
            f'datasets.train.dataroot={data / "train"}', f'datasets.val.dataroot={data / "val"}',
            'network_G.block_num=[1,1]', 'datasets.train.GT_size=32',
            'datasets.train.batch_size=2', 'datasets.train.n_workers=0', 'logger.print_freq=1',
            *overrides]


def small_config(data: Path, root: Path, name: str, *overrides: str):
    return load_config(None, small_overrides(data, root, name, *overrides))


def losses_of(checkpoint: dict) -> list:
    """The total loss of every iteration (print_freq 1)."""
    return [value for _, value in checkpoint['history']['loss']['total']]


def load_checkpoint(root: Path, name: str, which: str = 'model_latest.pdparams') -> dict:
    return paddle.load(str(root / name / 'models' / which))


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a)


@pytest.fixture(scope='module')
def six_iterations(synthetic_sidd, tmp_path_factory):
    """An uninterrupted 6-iteration run that validates and saves at 3 and 6."""
    root = tmp_path_factory.mktemp('experiments')
    cfg = small_config(synthetic_sidd, root, 'full', 'train.niter=6', 'train.val_freq=3',
                       'logger.save_checkpoint_freq=3')
    train(cfg)
    return cfg, root


def test_loss_decreases_on_a_fixed_batch(synthetic_sidd, tmp_path):
    trainer = Trainer(small_config(synthetic_sidd, tmp_path, 'fit', 'train.niter=30'))
    try:
        batch = next(iter(trainer.loader))
        totals = [float(trainer.step(batch)[0]) for _ in range(25)]  # [0]: the total loss
    finally:
        trainer.close()
    assert np.mean(totals[-5:]) < 0.7 * np.mean(totals[:5])


def test_resume_equals_uninterrupted_run(six_iterations, synthetic_sidd, tmp_path):
    cfg, root = six_iterations
    first = small_config(synthetic_sidd, tmp_path, 'split', 'train.niter=3', 'train.val_freq=3',
                         'logger.save_checkpoint_freq=3')
    train(first)
    # The resumed run extends niter, as a user continuing a finished run would.
    train(small_config(synthetic_sidd, tmp_path, 'split', 'train.niter=6', 'train.val_freq=3',
                       'logger.save_checkpoint_freq=3'), resume=True)
    full, resumed = load_checkpoint(root, 'full'), load_checkpoint(tmp_path, 'split')
    assert resumed['iter'] == full['iter'] == 6
    assert max_difference(resumed['state_dict'], full['state_dict']) <= 1e-6
    moments = [k for k in full['optimizer'] if 'moment' in k]
    assert moments and max_difference({k: resumed['optimizer'][k] for k in moments},
                                      {k: full['optimizer'][k] for k in moments}) <= 1e-6
    np.testing.assert_allclose(losses_of(resumed), losses_of(full), rtol=1e-6)
    assert resumed['lr_scheduler']['last_epoch'] == full['lr_scheduler']['last_epoch'] == 6
    assert 'Resumed from' in (tmp_path / 'split' / 'train.log').read_text()


def test_same_seed_gives_identical_losses(six_iterations, synthetic_sidd, tmp_path):
    cfg, root = six_iterations
    train(small_config(synthetic_sidd, tmp_path, 'again', 'train.niter=3', 'train.val_freq=3',
                       'logger.save_checkpoint_freq=3'))
    again = losses_of(load_checkpoint(tmp_path, 'again'))
    assert len(again) == 3 and again == losses_of(load_checkpoint(root, 'full'))[:3]
    other_seed = small_config(synthetic_sidd, tmp_path, 'seed11', 'train.niter=1',
                              'train.manual_seed=11')
    train(other_seed)
    assert losses_of(load_checkpoint(tmp_path, 'seed11'))[0] != again[0]


def test_checkpoint_contents_and_logs(six_iterations):
    cfg, root = six_iterations
    exp = root / 'full'
    ckpt = load_checkpoint(root, 'full')
    assert {'state_dict', 'optimizer', 'lr_scheduler', 'iter', 'best_psnr', 'rng_states',
            'config'} <= set(ckpt)
    assert ckpt['iter'] == 6 and ckpt['config'] == cfg.to_dict()
    assert set(ckpt['rng_states'][0]) == {'python', 'numpy', 'paddle_cpu', 'device', 'paddle_device'}
    assert ckpt['optimizer_kind'] == 'adam_multi_tensor'
    assert len(ckpt['rng_states']) == 1
    val_lines = (exp / 'val.log').read_text().splitlines()
    assert len(val_lines) == 2 and all('psnr' in line and 'ssim' in line for line in val_lines)
    psnrs = [psnr for _, psnr in ckpt['history']['val_psnr']]
    assert ckpt['best_psnr'] == max(psnrs) and math.isfinite(ckpt['best_psnr'])
    best = load_checkpoint(root, 'full', 'model_best.pdparams')
    assert best['best_psnr'] == ckpt['best_psnr']
    model = build_invnet(block_num=[1, 1])
    load_weights(model, str(exp / 'models' / 'model_latest.pdparams'))  # as every script loads
    train_lines = [line for line in (exp / 'train.log').read_text().splitlines() if 'avg_ips' in line]
    assert len(train_lines) == 6
    # The reproduction guide's fields (ArticleReproduction_CV.md 3.12), parsed as TIPC does.
    last = train_lines[-1]
    assert re.search(r'\[Epoch \d+/\d+, iter: 6/6\] lr: ', last), last
    values = dict(re.findall(r'(\w+): ([-+.\de]+)', last.split('] ', 1)[1]))
    assert set(LOSS_TERMS) | {'lr', 'loss', 'avg_reader_cost', 'avg_batch_cost', 'avg_samples',
                              'avg_ips'} <= set(values), last
    assert float(values['avg_samples']) == cfg.datasets.train.batch_size
    assert 0 <= float(values['avg_reader_cost']) < float(values['avg_batch_cost'])
    assert float(values['avg_ips']) == pytest.approx(
        float(values['avg_samples']) / float(values['avg_batch_cost']), rel=1e-3)
    assert (exp / 'training_curves.png').stat().st_size > 0 and (exp / 'config.yml').is_file()
    assert not [p for p in (exp / 'models').iterdir() if p.suffix == '.tmp']


def test_weight_average_follows_its_formula_and_copies_fixed_tensors():
    from training.ema import WeightAverage

    paddle.seed(0)
    net, averaged = build_invnet(block_num=[1, 1]), build_invnet(block_num=[1, 1])
    ema = WeightAverage(net, averaged, 0.999)
    before = {k: np.asarray(v).copy() for k, v in ema.state_dict().items()}
    assert max_difference(before, net.state_dict()) == 0  # starts from the weights
    with paddle.no_grad():
        for param in net.parameters():
            param.set_value(param + 1.0)
    ema.update(5)  # warm-up: min(0.999, 6 / 15)
    assert ema.decay_at(5) == pytest.approx(0.4) and ema.decay_at(10 ** 6) == 0.999
    trainable = {name for name, p in net.named_parameters()}
    after = ema.state_dict()
    for key, value in net.state_dict().items():
        expected = (0.4 * before[key] + 0.6 * np.asarray(value)) if key in trainable else np.asarray(value)
        np.testing.assert_allclose(np.asarray(after[key]), expected, rtol=1e-6, atol=1e-6)
    assert {'operations.0.haar_weights'} <= set(net.state_dict()) - trainable


def test_weight_averaging_resumes_exactly_and_is_the_model_of_the_checkpoint(synthetic_sidd, tmp_path):
    """train.ema_decay: the average is saved, resumed exactly, validated beside the trained
    weights, and is what every script loads from the checkpoint; training itself (the losses,
    its z draws) is the same as without averaging."""
    overrides = ('train.ema_decay=0.9', 'train.val_freq=3', 'logger.save_checkpoint_freq=3')
    train(small_config(synthetic_sidd, tmp_path, 'full', 'train.niter=6', *overrides))
    train(small_config(synthetic_sidd, tmp_path, 'split', 'train.niter=3', *overrides))
    train(small_config(synthetic_sidd, tmp_path, 'split', 'train.niter=6', *overrides), resume=True)
    train(small_config(synthetic_sidd, tmp_path, 'plain', 'train.niter=6', 'train.val_freq=3',
                       'logger.save_checkpoint_freq=3'))
    full, split = load_checkpoint(tmp_path, 'full'), load_checkpoint(tmp_path, 'split')
    plain = load_checkpoint(tmp_path, 'plain')
    assert max_difference(full['ema_state_dict'], split['ema_state_dict']) == 0
    assert max_difference(full['state_dict'], split['state_dict']) == 0
    assert losses_of(full) == losses_of(plain) and 'ema_state_dict' not in plain
    assert max_difference(full['ema_state_dict'], full['state_dict']) > 1e-6
    model = build_invnet(block_num=[1, 1])
    load_weights(model, str(tmp_path / 'full' / 'models' / 'model_latest.pdparams'))
    assert max_difference(model.state_dict(), full['ema_state_dict']) == 0
    lines = (tmp_path / 'full' / 'val.log').read_text().splitlines()
    assert len(lines) == 2 and all('; without averaging: psnr' in line for line in lines)
    assert [it for it, _ in full['history']['val_psnr_raw']] == [3, 6]
    # Turned off on resume: the run goes on from the trained weights and says so.
    train(small_config(synthetic_sidd, tmp_path, 'split', 'train.niter=7', 'train.val_freq=3',
                       'logger.save_checkpoint_freq=3'), resume=True)
    assert 'averaged weights of' in (tmp_path / 'split' / 'train.log').read_text()
    assert 'ema_state_dict' not in load_checkpoint(tmp_path, 'split')


def test_cpu_convolution_choice_is_logged_and_agrees_with_paddles_own(six_iterations, synthetic_sidd, tmp_path):
    """train.cpu_conv=auto (the default) uses the oneDNN operator when it builds here, and
    train.cpu_conv=paddle Paddle's own convolution; the losses agree to float32 rounding."""
    from ops import onednn_conv

    cfg, root = six_iterations
    log = (root / 'full' / 'train.log').read_text()
    if onednn_conv.load() is not None:
        assert 'Convolutions: oneDNN custom operator' in log
    else:
        assert f'oneDNN custom operator unavailable: {onednn_conv.unavailable_reason()}' in log
    train(small_config(synthetic_sidd, tmp_path, 'paddle_conv', 'train.niter=3', 'train.cpu_conv=paddle'))
    assert 'Convolutions: Paddle dygraph\n' in (tmp_path / 'paddle_conv' / 'train.log').read_text()
    np.testing.assert_allclose(losses_of(load_checkpoint(tmp_path, 'paddle_conv')),
                               losses_of(load_checkpoint(root, 'full'))[:3], rtol=1e-4)


def test_existing_experiment_is_never_reused_without_resume(six_iterations):
    cfg, root = six_iterations
    latest = root / 'full' / 'models' / 'model_latest.pdparams'
    before = latest.stat().st_mtime_ns
    with pytest.raises(TrainingError, match='--resume'):
        train(cfg)
    assert latest.stat().st_mtime_ns == before


def test_resume_without_checkpoint_is_an_error(synthetic_sidd, tmp_path):
    with pytest.raises(TrainingError, match='no checkpoint'):
        train(small_config(synthetic_sidd, tmp_path, 'nothing', 'train.niter=1'), resume=True)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(synthetic_sidd, tmp_path):
    # lr 1e30: the first step blows the weights up, so iteration 2's loss is not finite.
    cfg = small_config(synthetic_sidd, tmp_path, 'nan', 'train.niter=8', 'train.lr_G=1e30',
                       'logger.save_checkpoint_freq=1', 'train.val_freq=100')
    with pytest.raises(TrainingError, match='non-finite loss at iteration 2') as error:
        train(cfg)
    assert all(term in str(error.value) for term in LOSS_TERMS)
    ckpt = load_checkpoint(tmp_path, 'nan')
    assert ckpt['iter'] == 1
    assert all(np.isfinite(np.asarray(v)).all() for v in ckpt['state_dict'].values())
    assert not [p for p in (tmp_path / 'nan' / 'models').iterdir() if p.suffix == '.tmp']


def test_gradient_clipping_by_global_norm():
    cfg = load_config(None, ['train.gradient_clipping=2.5'])
    clip = build_grad_clip(cfg.train)
    grads = [np.array([3.0, 0.0], 'float32'), np.array([[0.0, 4.0]], 'float32')]  # norm 5
    params = [paddle.create_parameter(g.shape, 'float32') for g in grads]
    clipped = clip([(p, paddle.to_tensor(g)) for p, g in zip(params, grads)])
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    for (_, got), g in zip(clipped, grads):
        np.testing.assert_allclose(got.numpy(), g * 2.5 / max(norm, 2.5), rtol=1e-6)
    # Per-tensor clipping would leave the norm-3 tensor unchanged at 2.5 < 3 -> 2.5 * g / 3.
    assert not np.allclose(clipped[0][1].numpy(), grads[0] * 2.5 / 3)
    small = clip([(params[0], paddle.to_tensor(grads[0] / 10))])
    np.testing.assert_allclose(small[0][1].numpy(), grads[0] / 10)
    assert build_grad_clip(load_config(None, ['train.gradient_clipping=~']).train) is None


def test_optimizer_matches_official_torch_recipe():
    """clip_grad_norm_ + Adam(weight_decay) + MultiStepLR, stepped on hand-made gradients."""
    torch = pytest.importorskip('torch')
    cfg = load_config(None, ['train.lr_G=0.01', 'train.lr_steps=[2]', 'train.weight_decay_G=0.01',
                             'train.gradient_clipping=1.5'])
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(shape).astype('float32') for shape in ((4, 3), (3,))]
    params = [paddle.create_parameter(w.shape, 'float32',
                                      default_initializer=paddle.nn.initializer.Assign(w))
              for w in weights]
    optimizer, scheduler = build_optimizer(cfg.train, params)
    reference = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    torch_optimizer = torch.optim.Adam(reference, lr=0.01, betas=(0.9, 0.999), weight_decay=0.01)
    torch_scheduler = torch.optim.lr_scheduler.MultiStepLR(torch_optimizer, [2], 0.5)
    for scale in (3.0, 0.1, 2.0, 5.0):  # clipped, not clipped, clipped, clipped
        grads = [rng.standard_normal(w.shape).astype('float32') * scale for w in weights]
        for p, g in zip(params, grads):
            p.grad = paddle.to_tensor(g)
        optimizer.step()
        scheduler.step()
        optimizer.clear_grad()
        for p, g in zip(reference, grads):
            p.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(reference, 1.5)
        torch_optimizer.step()
        torch_scheduler.step()
    for p, ref in zip(params, reference):
        np.testing.assert_allclose(p.numpy(), ref.detach().numpy(), atol=1e-6)


def launch_four_card_script(tmp_path: Path, name: str, overrides: list):
    """``train_denoising_4cards.py`` itself, two CPU processes (gloo) under the launcher, with
    the one-card configuration so that it can be compared with a one-process run."""
    log_dir = tmp_path / f'launch_{name}'
    result = subprocess.run(
        [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
         '--log_dir', str(log_dir), 'train_denoising_4cards.py', '-c', 'training_1card.yml',
         '-o', *overrides],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    logs = [(log_dir / f'workerlog.{rank}').read_text() for rank in range(2)]
    return result, logs


def test_two_process_cpu_launch(synthetic_sidd, tmp_path):
    """2 processes x batch 1 (gloo): ranks stay identical and match 1 process x batch 2;
    with a NaN, every rank stops at the same iteration with the same message.

    z is switched off (gaussian_scale 0) so the objective is deterministic and the two
    set-ups must agree. lr 1e30 makes iteration 2's loss non-finite.
    """
    common = ['train.niter=2', 'train.gaussian_scale=0', 'train.val_freq=100']
    result, logs = launch_four_card_script(
        tmp_path, 'two', small_overrides(synthetic_sidd, tmp_path, 'two', *common,
                                         'datasets.train.batch_size=1', 'train.val_freq=2'))
    assert result.returncode == 0, result.stderr[-3000:] + logs[0][-3000:] + logs[1][-3000:]
    train_log = (tmp_path / 'two' / 'train.log').read_text()
    assert 'device cpu x 2' in train_log
    assert 'at iteration 2 (weights identical on all 2 ranks)' in train_log
    # Validation split between the two ranks equals one process validating every block.
    split_psnr = float(train_log.split('Validation: iter        2 psnr ')[1].split()[0])
    with paddle.utils.unique_name.guard():
        checker = Trainer(load_config(str(REPO / 'training_1card.yml'),
                                      small_overrides(synthetic_sidd, tmp_path, 'check', *common)))
        checker.net.set_state_dict(load_checkpoint(tmp_path, 'two')['state_dict'])
        whole, _ = validate(checker.net, checker.val_set, checker.cfg)
        checker.close()
    assert split_psnr == pytest.approx(whole.psnr, abs=1e-3)

    train(load_config(str(REPO / 'training_1card.yml'),  # 1 process x batch 2
                      small_overrides(synthetic_sidd, tmp_path, 'one', *common)))
    dp, single = load_checkpoint(tmp_path, 'two'), load_checkpoint(tmp_path, 'one')
    assert dp['iter'] == single['iter'] == 2 and len(dp['rng_states']) == 2
    assert max_difference(dp['state_dict'], single['state_dict']) < 1e-5

    result, logs = launch_four_card_script(
        tmp_path, 'two_nan', small_overrides(synthetic_sidd, tmp_path, 'two_nan', *common,
                                             'datasets.train.batch_size=1', 'train.lr_G=1e30'))
    assert result.returncode != 0
    for log in logs:
        assert 'error: non-finite loss at iteration 2' in log and 'Traceback' not in log


def test_script_trains_and_refuses_to_reuse_the_experiment(synthetic_sidd, tmp_path):
    command = [sys.executable, str(REPO / 'train_denoising_1card.py'), '-o',
               *small_overrides(synthetic_sidd, tmp_path, 'cli', 'train.niter=1')]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert load_checkpoint(tmp_path, 'cli')['iter'] == 1
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and 'error: experiment folder' in again.stderr
    assert '--resume' in again.stderr and 'Traceback' not in again.stderr


def test_synthetic_noise_training_on_clean_images(synthetic_sidd, tmp_path):
    """datasets.*.mode LQGTSN: trained and validated from GT/ alone (blind noise for training,
    a fixed sigma 25 copy for validation)."""
    cfg = small_config(synthetic_sidd, tmp_path, 'awgn', 'train.niter=2', 'train.val_freq=2',
                       'datasets.train.mode=LQGTSN', 'datasets.train.noise_mode=B',
                       'datasets.val.mode=LQGTSN', 'datasets.val.sigma=25')
    train(cfg)
    ckpt = load_checkpoint(tmp_path, 'awgn')
    assert ckpt['iter'] == 2 and len(ckpt['history']['val_psnr']) == 1
    assert ckpt['config']['datasets']['train']['mode'] == 'LQGTSN'


def test_weights_flag_sets_the_initial_weights(synthetic_sidd, tmp_path):
    """TIPC's pretrained-model key: --weights W is -o path.pretrain_model_G=W."""
    from apps import train as training_script

    missing = tmp_path / 'absent.pdparams'
    with pytest.raises(SystemExit, match=f'weights file not found: {missing}'):
        training_script.main('training_1card.yml', 'test', [
            '-o', *small_overrides(synthetic_sidd, tmp_path, 'init', 'train.niter=1'),
            '--weights', str(missing)])


def test_amp_on_the_cpu_stops_with_the_reason(synthetic_sidd, tmp_path):
    """Paddle has no bf16 training on CPUs: train.amp there is an error, not float32 under
    an AMP label."""
    with pytest.raises(TrainingError, match='train.amp=O1 needs a GPU'):
        Trainer(small_config(synthetic_sidd, tmp_path, 'amp', 'train.niter=1', 'train.amp=O1'))
    assert not (tmp_path / 'amp').exists()


def copy_data(synthetic_sidd, tmp_path):
    data = tmp_path / 'data'
    shutil.copytree(synthetic_sidd, data)
    return data


@pytest.mark.parametrize('problem,match', [
    ('unpaired', 'GT/ and Noisy/ must hold the same file names'),
    ('batch', r"'datasets.train.batch_size' \(8 per process x 1\) is larger than the 4 training image"),
    ('crop', r"'datasets.train.GT_size' \(96\) is larger than the smallest training image, .*0_\d\.PNG \(64 x 64\)")])
def test_data_that_cannot_train_is_refused_before_the_experiment_folder(synthetic_sidd, tmp_path,
                                                                        problem, match):
    data = copy_data(synthetic_sidd, tmp_path)
    extra = []
    if problem == 'unpaired':
        os.rename(data / 'train' / 'Noisy' / '0_1.PNG', data / 'train' / 'Noisy' / 'other.PNG')
    elif problem == 'batch':
        extra = ['datasets.train.batch_size=8']
    else:
        extra = ['datasets.train.GT_size=96']
    command = [sys.executable, str(REPO / 'train_denoising_1card.py'), '-o',
               *small_overrides(data, tmp_path / 'exp', 'run', 'train.niter=1', *extra)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert re.search(match, result.stderr), result.stderr[-2000:]
    assert not (tmp_path / 'exp').exists()


def test_a_start_that_failed_before_its_first_checkpoint_is_retried_by_the_same_command(synthetic_sidd,
                                                                                      tmp_path):
    data = copy_data(synthetic_sidd, tmp_path)
    broken = data / 'train' / 'Noisy' / '0_2.PNG'
    good = broken.read_bytes()
    broken.write_bytes(good[:200])  # truncated: found when the first batch is read
    command = [sys.executable, str(REPO / 'train_denoising_1card.py'), '-o',
               *small_overrides(data, tmp_path, 'retry', 'train.niter=2', 'datasets.train.batch_size=4')]
    failed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and '0_2.PNG' in failed.stderr
    assert 'run the same command again' in failed.stderr and '--resume' not in failed.stderr
    broken.write_bytes(good)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert load_checkpoint(tmp_path, 'retry')['iter'] == 2
