"""Every command of the earlier Paddle reproduction's README (its users' manual), run verbatim
in a scratch copy of this repository laid out as that README says: SIDD_mini beside the
scripts, the SIDD-Medium folder and validation .mat files its data steps read, a trained model
at pretrained/model_best.pdparams (the shipped demo model). Its outputs are checked against
this project's own spellings on the same data. The TIPC commands of that README are the test
command's lite chain (tools/run_tests.sh)."""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tools.make_synthetic_sidd import make_patch_folders
from utils.image_io import read_image_raw

REPO = Path(__file__).resolve().parents[1]
DEMO = 'pretrained/InvDN_SIDD_mini_demo.pdparams'
SHARED_MINI = REPO.parent / 'shared' / 'SIDD_mini'


def run(scratch: Path, command: str, timeout: int = 300) -> str:
    """``command`` exactly as the README writes it, from the scratch checkout; its output."""
    done = subprocess.run(command, shell=True, cwd=scratch, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f'{command}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}'
    return done.stdout + done.stderr


def run_until_first_iteration(scratch: Path, command: str, niter: int, timeout: int = 300) -> str:
    """A training command of ``niter`` iterations, stopped once it has read its data and built
    its model (the line that counts the training images and the iterations to run) or, where
    that line is not on its output, once its first iteration is done."""
    first = re.compile(rf'(iterations 0 -> {niter}\b|\b1/{niter}\b)')
    # A mark in the environment finds the processes the command starts, also those that
    # paddle.distributed.launch puts in sessions of their own.
    mark = f'INVDN_TEST_RUN={os.getpid()}_{time.monotonic_ns()}'
    env = dict(os.environ, INVDN_TEST_RUN=mark.split('=')[1])
    process = subprocess.Popen(command, shell=True, cwd=scratch, stdout=subprocess.PIPE, env=env,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen, deadline = '', time.monotonic() + timeout
    try:
        for line in iter(process.stdout.readline, ''):
            seen += line
            if first.search(seen) or time.monotonic() > deadline:
                break
    finally:
        kill_marked(mark.encode())
        process.wait()
    assert first.search(seen), f'{command}\n{seen[-3000:]}'
    return seen


def kill_marked(mark: bytes) -> None:
    """SIGKILL every process whose environment holds ``mark``."""
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if mark in f.read().split(b'\0'):
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def mini_folder(root: Path) -> Path:
    """The real SIDD_mini when it is here ($SIDD_MINI_DIR or ../shared), else a synthetic one."""
    real = Path(os.environ.get('SIDD_MINI_DIR', SHARED_MINI))
    if (real / 'train_mini' / 'GT').is_dir() and (real / 'val_mini' / 'GT').is_dir():
        return real
    make_patch_folders(str(root / 'train_mini'), num_pairs=2, size=512, seed=0, with_lq=True)
    make_patch_folders(str(root / 'val_mini'), num_pairs=2, size=256, seed=1, with_lq=False)
    return root


@pytest.fixture(scope='module')
def scratch(tmp_path_factory) -> Path:
    import scipy.io

    root = tmp_path_factory.mktemp('earlier_readme')
    checkout = root / 'InvDN'
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file() and not name.startswith('test_tipc/output'):
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    shutil.copy(checkout / DEMO, checkout / 'pretrained' / 'model_best.pdparams')
    mini = mini_folder(root / 'synthetic_mini')
    shutil.copytree(mini / 'train_mini', checkout / 'SIDD_mini' / 'train_mini')
    shutil.copytree(mini / 'val_mini', checkout / 'SIDD_mini' / 'val_mini')
    # What the data steps read: SIDD-Medium scenes (2 of the mini pairs), the validation .mat files.
    names = sorted(os.listdir(checkout / 'SIDD_mini' / 'train_mini' / 'GT'))[:2]
    for k, name in enumerate(names):
        scene = checkout / 'SIDD_Medium_Srgb' / 'Data' / f'000{k}_001_S6_00100_00060_3200_L'
        scene.mkdir(parents=True)
        shutil.copy(checkout / 'SIDD_mini' / 'train_mini' / 'GT' / name, scene / '0001_GT_SRGB_010.PNG')
        shutil.copy(checkout / 'SIDD_mini' / 'train_mini' / 'Noisy' / name, scene / '0001_NOISY_SRGB_010.PNG')
    val = checkout / 'SIDD_mini' / 'val_mini'
    for sub, key in (('GT', 'ValidationGtBlocksSrgb'), ('Noisy', 'ValidationNoisyBlocksSrgb')):
        blocks = np.stack([read_image_raw(str(val / sub / name)) for name in sorted(os.listdir(val / sub))])
        scipy.io.savemat(str(checkout / f'{key}.mat'), {key: blocks[None]})
    return checkout


def test_data_steps_write_the_folders_training_reads(scratch):
    run(scratch, 'python generate_patches_sidd.py')
    run(scratch, 'python generate_lq.py')
    run(scratch, 'python extract_valid_patches_sidd.py')
    train = scratch / 'SIDD_Medium_Srgb_Patches_512' / 'train'
    assert len(os.listdir(train / 'GT')) == len(os.listdir(train / 'Noisy')) == len(os.listdir(train / 'LQ')) > 0
    assert len(os.listdir(scratch / 'SIDD_Valid_Srgb_Patches_256' / 'valid' / 'Noisy')) == \
        len(os.listdir(scratch / 'SIDD_mini' / 'val_mini' / 'Noisy'))


def test_training_commands_start_on_those_folders(scratch):
    if not (scratch / 'SIDD_Valid_Srgb_Patches_256').is_dir():
        test_data_steps_write_the_folders_training_reads(scratch)
    log = run_until_first_iteration(scratch, 'python train_denoising_1card.py', 600000)
    assert 'SIDD_Medium_Srgb_Patches_512/train' in (scratch / 'experiments' / 'InvDN_ResUnit_x4' /
                                                      'config.yml').read_text()
    assert 'iterations 0 -> 600000' in log
    log = run_until_first_iteration(scratch, 'python -m paddle.distributed.launch train_denoising_4cards.py',
                                    150000)
    assert 'iterations 0 -> 150000' in (scratch / 'experiments' / 'InvDN_ResUnit_x4_4cards' /
                                        'train.log').read_text()


def test_tipc_training_entry_writes_model_best(scratch):
    run(scratch, 'python train.py --data_dir ./SIDD_mini/train_mini/ --val_dir ./SIDD_mini/val_mini/ '
                 '--log_dir=./test_tipc/output/InvDN/norm_train_gpus_0 --iter=10   --batchSize=1')
    assert (scratch / 'test_tipc/output/InvDN/norm_train_gpus_0/models/model_best.pdparams').is_file()


def means(output: str) -> tuple:
    psnr = re.findall(r'^PSNR: ([\d.]+)$', output, re.M)
    ssim = re.findall(r'^SSIM: ([\d.]+)$', output, re.M)
    assert len(psnr) == len(ssim) == 1, output[-2000:]
    return float(psnr[0]), float(ssim[0])


def test_evaluation_prediction_export_and_inference(scratch):
    if not (scratch / 'SIDD_Valid_Srgb_Patches_256').is_dir():
        run(scratch, 'python extract_valid_patches_sidd.py')
    evaluated = run(scratch, 'python test_denoising_sidd.py --weights ./pretrained/model_best.pdparams')
    ours = run(scratch, 'python test_denoising_sidd.py --weights pretrained/InvDN_SIDD_mini_demo.pdparams '
                        '--val_dir SIDD_Valid_Srgb_Patches_256/valid --result_dir results/ours')
    assert means(evaluated) == means(ours)

    predicted = run(scratch, 'python predict.py --weights ./pretrained/model_best.pdparams '
                             '--data_path ./SIDD_mini/val_mini/ --result_dir ./predict_results/')
    ours = run(scratch, 'python predict.py --weights pretrained/InvDN_SIDD_mini_demo.pdparams --input '
                        'SIDD_mini/val_mini/Noisy --gt_dir SIDD_mini/val_mini/GT --result_dir results/predict')
    assert means(predicted) == means(ours) and 'weights: ./pretrained/model_best.pdparams' in predicted
    first = sorted(name for name in os.listdir(scratch / 'predict_results') if not name.startswith('.'))[0]
    np.testing.assert_array_equal(read_image_raw(str(scratch / 'predict_results' / first)),
                                  read_image_raw(str(scratch / 'results' / 'predict' / first)))

    exported = run(scratch, 'python export_model.py --weights ./pretrained/model_best.pdparams '
                            '--save-inference-dir ./export')
    assert 'exported to ./export' in exported
    assert {'model.pdiparams', 'model_contract.json'} <= set(os.listdir(scratch / 'export'))

    inferred = run(scratch, 'python infer.py --model-dir ./export --use-gpu True --benchmark False '
                            '--clean-dir ./SIDD_mini/val_mini/GT/0_0.PNG --noisy-dir ./SIDD_mini/val_mini/Noisy/0_0.PNG')
    line = re.search(r'image_name: \./SIDD_mini/val_mini/Noisy/0_0\.PNG, psnr: ([\d.]+)', inferred)
    assert line, inferred[-2000:]
    if 'no GPU' not in inferred:
        pytest.skip('this machine has a GPU: the no-GPU line is not printed')
    assert len([text for text in inferred.splitlines() if 'GPU' in text]) == 1
    from_predict = re.search(r'image_name: \./SIDD_mini/val_mini/Noisy/0_0\.PNG, psnr: ([\d.]+)', predicted)
    assert abs(float(line.group(1)) - float(from_predict.group(1))) < 0.05
