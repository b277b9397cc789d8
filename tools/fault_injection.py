"""Fault injection: kill, damage, fill and double-start training and data preparation, and
check that nothing is lost. Prints the table of docs/reliability.md:

    python -m tools.fault_injection            # long form (by hand; docs/reliability.md for its wall time)
    python -m tools.fault_injection --quick    # small form (tests/test_faults.py, CI)

Every trial runs on self-made data (tools/make_synthetic_sidd.py) in a temporary folder:

* kill -9 training: a small run (block_num [1, 1], 32 px crops, a checkpoint every
  iteration, validation every 3, one loader worker) killed -- with its whole process group,
  as a preempted job is -- at moments drawn uniformly over the training time still to go
  (from the uninterrupted run's), then resumed with ``--resume`` until it ends; its weights, Adam state, schedule and
  logged history must equal those of an uninterrupted run, bit for bit ("data lost" counts
  the runs that differ). The long form also kills a 2-process data-parallel launch (gloo).
* kill -9 during a checkpoint write: a process writing checkpoints back to back is killed at
  random moments; what ``--resume`` would load must be the last checkpoint reported complete.
* kill -9 data preparation: generate_patches_sidd.py, generate_lq.py and
  extract_valid_patches_sidd.py killed at random moments, then rerun with ``--resume``; the
  files must equal an uninterrupted run's, byte for byte, with no partial file ever seen
  under a final name.
* damaged checkpoint: the newest checkpoint truncated, bit-flipped or emptied; ``--resume``
  must name it, fall back to the one before and still end equal to the uninterrupted run.
* disk full: a checkpoint, an image and a log line written onto a small tmpfs (mounted when
  run as root, else skipped with the reason); one clear error, the previous file intact.
* second run on one folder: refused while the first holds the lock (every resume after a
  kill above takes over the stale lock of the killed run).
* dead loader worker: the loader's worker process killed; the run must stop with one error
  line within seconds.
"""
import argparse
import contextlib
import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

PREP_SCRIPTS = ('generate_patches_sidd.py', 'generate_lq.py', 'extract_valid_patches_sidd.py')
DAMAGES = ('truncated', 'empty', 'bit flip')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(REPO, 'train_denoising_1card.py')


@dataclass
class Row:
    """One line of the table."""
    fault: str
    trials: int
    survived: int
    lost: int
    note: str = ''


# ---------------------------------------------------------------- processes

def start(command: Sequence[str], log_path: str) -> subprocess.Popen:
    """A child in its own process group (killed as a whole, loader workers included)."""
    log = open(log_path, 'ab')  # noqa: SIM115 -- closed with the child by finish()
    # One math thread, fixed: MKL's results depend on its thread count, which it may lower
    # on a busy machine (MKL_DYNAMIC); "bit for bit" must compare the same arithmetic.
    env = dict(os.environ, PYTHONUNBUFFERED='1', MKL_NUM_THREADS='1', MKL_DYNAMIC='FALSE',
               OMP_NUM_THREADS='1')
    return subprocess.Popen(list(command), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def descendants(pid: int) -> List[int]:
    """Every process below ``pid`` (the launcher starts its workers in their own groups)."""
    found, todo = [], [pid]
    while todo:
        children = subprocess.run(['pgrep', '-P', str(todo.pop())], capture_output=True,
                                  text=True).stdout.split()
        found += [int(c) for c in children]
        todo += [int(c) for c in children]
    return found


def kill_group(proc: subprocess.Popen) -> bool:
    """``kill -9`` the child, its process group and every process below it, as a preempted
    job is killed; True when it was still running."""
    alive = proc.poll() is None
    below = descendants(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    for pid in below:  # gone before anything else starts on the folder
        while os.path.exists(f'/proc/{pid}') and _state(pid) != 'Z':
            time.sleep(0.01)
    return alive


def _state(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return 'Z'


def finish(proc: subprocess.Popen, timeout: float = 600) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return -9


def wait_for(predicate: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> bool:
    """Poll ``predicate`` until it holds (True) or the child ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- data

def make_data(root: str) -> Dict[str, str]:
    from tools.make_synthetic_sidd import make_medium_tree, make_patch_folders, make_validation_mat
    make_patch_folders(os.path.join(root, 'train'), num_pairs=6, size=64, seed=0, with_lq=True)
    make_patch_folders(os.path.join(root, 'val'), num_pairs=2, size=64, seed=1, with_lq=False)
    make_medium_tree(os.path.join(root, 'medium', 'Data'), num_scenes=3, height=240, width=320)
    make_validation_mat(os.path.join(root, 'mat'), num_images=6, num_blocks=8, size=64)
    return {'train': os.path.join(root, 'train'), 'val': os.path.join(root, 'val'),
            'medium': os.path.join(root, 'medium', 'Data'), 'mat': os.path.join(root, 'mat')}


def training_overrides(data: Dict[str, str], root: str, name: str, niter: int) -> List[str]:
    return ['device=cpu', f'name={name}', f'path.experiments_root={root}',
            f'datasets.train.dataroot={data["train"]}', f'datasets.val.dataroot={data["val"]}',
            'network_G.block_num=[1,1]', 'datasets.train.GT_size=32', 'datasets.train.batch_size=2',
            'datasets.train.n_workers=1', 'datasets.val.batch_size=2', f'train.niter={niter}',
            'train.val_freq=3', 'logger.print_freq=1', 'logger.save_checkpoint_freq=1',
            'logger.keep_checkpoints=2']


def train_command(data: Dict[str, str], root: str, name: str, niter: int, resume: bool,
                  processes: int = 1) -> List[str]:
    """The one-card script, or with ``processes`` > 1 the launcher running
    train_denoising_4cards.py data-parallel on CPU processes (gloo), with the same settings."""
    tail = ['-o', *training_overrides(data, root, name, niter)] + (['--resume'] if resume else [])
    if processes == 1:
        return [sys.executable, TRAIN_SCRIPT, *tail]
    return [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', str(processes),
            '--log_dir', os.path.join(root, f'launch_{name}'),
            os.path.join(REPO, 'train_denoising_4cards.py'), '-c', 'training_1card.yml', *tail]


# ---------------------------------------------------------------- comparisons

def differences(a: object, b: object, where: str = '') -> List[str]:
    """Where two loaded checkpoints' entries differ (exact comparison)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f'{where}: keys {sorted(set(a) ^ set(b))[:3]}']
        return [d for key in sorted(a, key=str) for d in differences(a[key], b[key], f'{where}.{key}')]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f'{where}: length {len(a)} vs {len(b)}']
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f'{where}[{i}]')]
    if hasattr(a, 'shape') or hasattr(b, 'shape'):
        x, y = np.asarray(a), np.asarray(b)
        return [] if x.shape == y.shape and np.array_equal(x, y) else [where]
    return [] if a == b else [f'{where}: {a!r} vs {b!r}']


def run_state(exp_dir: str) -> Dict[str, object]:
    """What must survive: the final checkpoint's weights, Adam state, schedule, counters and
    logged history (the RNG states and configuration are checked by the resume itself)."""
    from utils.checkpoint import read_training_checkpoint
    state = read_training_checkpoint(os.path.join(exp_dir, 'models', 'model_latest.pdparams'))
    return {key: state[key] for key in ('state_dict', 'optimizer', 'lr_scheduler', 'iter',
                                        'best_psnr', 'history')}


def folder_bytes(folder: str) -> Dict[str, bytes]:
    files = {}
    for path in sorted(glob.glob(os.path.join(folder, '**', '*'), recursive=True)):
        if os.path.isfile(path) and not os.path.basename(path).startswith('.'):
            with open(path, 'rb') as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def partial_images(folder: str) -> List[str]:
    """Image files under a final name that do not decode (a partial write)."""
    from utils.image_io import ImageReadError, is_image_file, read_image_raw
    bad = []
    for path in glob.glob(os.path.join(folder, '**', '*'), recursive=True):
        if is_image_file(path) and not os.path.basename(path).startswith('.'):
            try:
                read_image_raw(path)
            except ImageReadError:
                bad.append(path)
    return bad


# ---------------------------------------------------------------- faults

MAX_FRESH_RUNS = 20


def kill_training(data: Dict[str, str], root: str, kills: int, runs: int, niter: int,
                  rng: random.Random, log: Callable[[str], None], processes: int = 1) -> Row:
    """``runs`` runs, each killed ``kills`` times at random moments and resumed."""
    from utils.checkpoint import iteration_checkpoints
    tag = '' if processes == 1 else f'_{processes}p'
    reference = os.path.join(root, 'reference' + tag)
    # The uninterrupted run is a child like the killed ones: the same script, environment and
    # arithmetic (not this process, whose math threads are already fixed).
    proc = start(train_command(data, root, 'reference' + tag, niter, False, processes),
                 reference + '.log')
    owned = wait_for(lambda: _read(os.path.join(reference, '.lock')) != '', proc)
    t0 = time.monotonic()
    if finish(proc) != 0 or not owned:
        raise RuntimeError(f'the uninterrupted run failed; see {reference}.log')
    span = time.monotonic() - t0  # kill moments are drawn over this (start-up excluded)
    log(f'uninterrupted run ({processes} process(es)): {span:.1f} s after start-up')
    expected = run_state(reference)
    landed, survived, lost, iters_at_kill = 0, 0, 0, []
    for r in range(runs):
        name = f'killed{tag}_{r}'
        exp = os.path.join(root, name)
        lock = os.path.join(exp, '.lock')
        done = fresh_runs = 0
        while True:
            has_checkpoint = os.path.isfile(os.path.join(exp, 'models', 'model_latest.pdparams'))
            if not has_checkpoint and os.path.isdir(exp):
                shutil.rmtree(exp)  # killed before its first checkpoint: nothing to resume
            before = _read(lock)
            proc = start(train_command(data, root, name, niter, has_checkpoint, processes),
                         exp + '.log')
            # Training has begun when the new process has taken the lock (a killed one's stays).
            its = iteration_checkpoints(os.path.join(exp, 'models'))
            left = (niter - (its[-1][0] if its else 0)) / niter  # share of the training to go
            if done < kills and wait_for(lambda: _read(lock) not in ('', before), proc):
                time.sleep(rng.uniform(0, span * left))
                if kill_group(proc):
                    done += 1
                    landed += 1
                    its = iteration_checkpoints(os.path.join(exp, 'models'))
                    iters_at_kill.append(its[-1][0] if its else 0)
                    continue
            code = finish(proc)
            if code != 0:
                raise RuntimeError(f'{name} failed (exit {code}); see {exp}.log')
            if done >= kills:
                break
            # Finished before the kill landed: a fresh run to kill again, sooner (the reference
            # may have been slower, e.g. when it built the CPU convolution operator).
            span /= 2
            fresh_runs += 1
            if fresh_runs > MAX_FRESH_RUNS:
                raise RuntimeError(f'{name}: {MAX_FRESH_RUNS} runs ended before a kill landed; see {exp}.log')
            shutil.rmtree(exp)
        diffs = differences(run_state(exp), expected)
        lost += bool(diffs)
        survived += 0 if diffs else done
        log(f'{name}: killed {done} times, {"identical" if not diffs else diffs[:5]}')
    what = 'training' if processes == 1 else f'{processes}-process data-parallel training'
    return Row(f'kill -9 {what}, then --resume', landed, survived, lost,
               f'{runs} run(s) x {kills} kills of a {niter}-iteration run, after checkpoint '
               f'{sorted(iters_at_kill)}; weights, Adam state, schedule, history compared bit for bit')


def _read(path: str) -> str:
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except OSError:
        return ''


CHECKPOINT_WRITER = '''
import sys, numpy as np, paddle
from utils.checkpoint import save_training_checkpoint
folder = sys.argv[1]
weights = {f'w{i}': paddle.to_tensor(np.full((256, 256), i, 'float32')) for i in range(32)}
for it in range(1, 100000):
    state = {'state_dict': weights, 'optimizer': {}, 'lr_scheduler': {}, 'iter': it,
             'best_psnr': 0.0, 'rng_states': [], 'config': {}, 'history': {}}
    save_training_checkpoint(state, folder, 2)
    print('saved', it, flush=True)
'''


def kill_checkpoint_writes(root: str, trials: int, rng: random.Random,
                           log: Callable[[str], None]) -> Row:
    from utils.checkpoint import find_resumable, iteration_checkpoints, read_training_checkpoint
    from utils.durable import remove_stale_temps
    survived, lost = 0, 0
    for t in range(trials):
        folder = os.path.join(root, f'writes_{t}')
        os.makedirs(folder)
        out = folder + '.log'
        proc = start([sys.executable, '-c', CHECKPOINT_WRITER, folder], out)
        wait_for(lambda: 'saved 3' in _read(out), proc)
        time.sleep(rng.uniform(0, 1.0))
        kill_group(proc)
        reported = [int(line.split()[1]) for line in _read(out).splitlines() if line.startswith('saved')]
        leftovers = remove_stale_temps(folder)
        path, state, warnings = find_resumable(folder)
        readable = all(_loads(p, read_training_checkpoint) for _, p in iteration_checkpoints(folder))
        ok = state is not None and readable and not warnings and state['iter'] >= reported[-1]
        survived += ok
        lost += not ok
        log(f'write {t}: last reported {reported[-1]}, resumable {state and state["iter"]}, '
            f'{len(leftovers)} temporary file(s) removed')
    return Row('kill -9 during checkpoint writes', trials, survived, lost,
               'last complete checkpoint always loaded; temporary files removed')


def _loads(path: str, reader: Callable[[str], object]) -> bool:
    try:
        reader(path)
        return True
    except Exception:  # noqa: BLE001 -- any failure is a damaged file here
        return False


def kill_preparation(data: Dict[str, str], root: str, trials: int, rng: random.Random,
                     log: Callable[[str], None], scripts: Sequence[str]) -> List[Row]:
    rows = []
    jobs = {
        'generate_patches_sidd.py': lambda out: ['generate_patches_sidd.py', '--input', data['medium'],
                                                 '--result_dir', out, '--ps', '48',
                                                 '--num_patches', '40', '--num_workers', '2'],
        'generate_lq.py': lambda out: ['generate_lq.py', '--input', out, '--num_workers', '2'],
        'extract_valid_patches_sidd.py': lambda out: ['extract_valid_patches_sidd.py', '--input',
                                                      data['mat'], '--result_dir', out,
                                                      '--num_workers', '2'],
    }
    for script in scripts:
        args = jobs[script]
        def prepare(out: str, script: str = script) -> None:
            if script == 'generate_lq.py':  # its input: GT patches without LQ
                shutil.copytree(os.path.join(data['train'], 'GT'), os.path.join(out, 'GT'))

        ref = os.path.join(root, 'prep_ref_' + script[:-3])
        prepare(ref)
        t0 = time.monotonic()
        if finish(start([sys.executable, *args(ref)], ref + '.log')) != 0:
            raise RuntimeError(f'{script} failed; see {ref}.log')
        span = time.monotonic() - t0
        expected = folder_bytes(ref)
        survived, lost, partial = 0, 0, 0
        for t in range(trials):
            out = os.path.join(root, f'prep_{script[:-3]}_{t}')
            prepare(out)
            proc = start([sys.executable, *args(out)], out + '.log')
            time.sleep(rng.uniform(0.3 * span, 0.95 * span))
            kill_group(proc)
            partial += len(partial_images(out))
            if finish(start([sys.executable, *args(out), '--resume'], out + '.log')) != 0:
                lost += 1
                continue
            same = folder_bytes(out) == expected
            survived += same
            lost += not same
        log(f'{script}: uninterrupted {span:.1f} s, {len(expected)} files; {partial} partial files')
        rows.append(Row(f'kill -9 {script}, then --resume', trials, survived, lost,
                        f'{partial} partial file(s) under final names'))
    return rows


def damaged_checkpoints(data: Dict[str, str], root: str, niter: int,
                        log: Callable[[str], None], kinds: Sequence[str]) -> Row:
    """A run stopped at niter - 1 (checkpoints niter - 2 and niter - 1 kept) has its newest
    checkpoint damaged, then is resumed to niter: it must name the file, fall back to
    niter - 2 and end equal to the uninterrupted run. Children, as the uninterrupted run."""
    expected = run_state(os.path.join(root, 'reference'))
    damages: Dict[str, Callable[[str], None]] = {
        'truncated': lambda p: os.truncate(p, os.path.getsize(p) // 2),
        'empty': lambda p: os.truncate(p, 0),
        'bit flip': _flip_middle_byte,
    }
    survived, lost = 0, 0
    for kind in kinds:
        damage = damages[kind]
        name = 'damaged_' + kind.replace(' ', '_')
        exp = os.path.join(root, name)
        for iterations, resume in ((niter - 1, False), (niter, True)):
            if resume:
                damage(os.path.join(exp, 'models', 'model_latest.pdparams'))  # = model_iter_<niter-1>
            code = finish(start(train_command(data, root, name, iterations, resume), exp + '.log'))
            if code != 0:
                raise RuntimeError(f'{name} failed (exit {code}); see {exp}.log')
        said = 'WARNING: skipped' in _read(os.path.join(exp, 'train.log'))
        ok = said and not differences(run_state(exp), expected)
        survived += ok
        lost += not ok
        log(f'{kind}: warned {said}, {"identical" if ok else "DIFFERENT"}')
    return Row(f'damaged newest checkpoint ({", ".join(kinds)})', len(kinds), survived,
               lost, 'named, fell back to the previous one, ended identical')


def _flip_middle_byte(path: str) -> None:
    with open(path, 'r+b') as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


@contextlib.contextmanager
def small_tmpfs(root: str, size_kb: int) -> Iterator[Optional[str]]:
    """A tmpfs of ``size_kb`` mounted under ``root`` (None when it cannot be mounted)."""
    mount = os.path.join(root, 'full_disk')
    os.makedirs(mount, exist_ok=True)
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size_kb}k', 'tmpfs', mount],
                          capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(['umount', mount], capture_output=True)


def disk_full(root: str, log: Callable[[str], None]) -> Row:
    import paddle

    from utils.checkpoint import read_training_checkpoint, save_training_checkpoint
    from utils.durable import DiskFullError, is_temp_name
    from utils.image_io import write_image
    from utils.logging_utils import close_logger, setup_logger
    with small_tmpfs(root, 512) as mount:
        if mount is None:
            return Row('disk full', 0, 0, 0, 'skipped: cannot mount a tmpfs (needs root)')
        results = []
        small = {'w': paddle.zeros([16, 16])}
        big = {'w': paddle.zeros([400, 400])}  # 640 kB: does not fit
        models = os.path.join(mount, 'models')

        def state(weights: dict, it: int) -> dict:
            return {'state_dict': weights, 'optimizer': {}, 'lr_scheduler': {}, 'iter': it,
                    'best_psnr': 0.0, 'rng_states': [], 'config': {}, 'history': {}}
        save_training_checkpoint(state(small, 1), models, 2)
        try:
            save_training_checkpoint(state(big, 2), models, 2)
            results.append(('checkpoint', False))
        except DiskFullError as err:
            kept = read_training_checkpoint(os.path.join(models, 'model_latest.pdparams'))['iter'] == 1
            results.append(('checkpoint', kept and 'disk full' in str(err) and
                            'model_iter_00000002' in str(err)))
        try:
            write_image(os.path.join(mount, 'big.png'),
                        np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8))
            results.append(('image', False))
        except DiskFullError as err:
            results.append(('image', 'big.png' in str(err) and not os.path.exists(
                os.path.join(mount, 'big.png'))))
        filler = os.path.join(mount, 'filler')
        with open(filler, 'wb') as f, contextlib.suppress(OSError):
            f.write(b'\0' * (1 << 20))
        logger = setup_logger('fault.disk_full', os.path.join(mount, 'train.log'), screen=False)
        try:
            for _ in range(2000):
                logger.info('x' * 200)
            results.append(('log line', False))
        except DiskFullError as err:
            results.append(('log line', 'train.log' in str(err)))
        finally:
            close_logger(logger)
        temps = [n for _, _, names in os.walk(mount) for n in names if is_temp_name(n)]
        ok = sum(good for _, good in results) if not temps else 0
        log(f'disk full: {results}, temporary files left: {temps}')
    return Row('disk full (checkpoint, image, log line)', len(results), ok, len(results) - ok,
               'tmpfs of 512 kB; previous checkpoint intact, no partial file')


def second_run_and_dead_worker(data: Dict[str, str], root: str, niter: int,
                               log: Callable[[str], None]) -> List[Row]:
    """While a run holds its folder, a second --resume there is refused (every resume of
    ``kill_training`` takes over the stale lock its killed predecessor left); then the first
    run's loader worker is killed, and the run must stop with one error within seconds."""
    name = 'concurrent'
    exp = os.path.join(root, name)
    first = start(train_command(data, root, name, niter * 50, False), exp + '.log')
    wait_for(lambda: os.path.isfile(os.path.join(exp, 'models', 'model_latest.pdparams')), first)
    second = subprocess.run(train_command(data, root, name, niter * 50, True), cwd=REPO,
                            capture_output=True, text=True)
    refused = second.returncode != 0 and 'in use by another training run' in second.stderr \
        and f'pid {first.pid}' in second.stderr and 'Traceback' not in second.stderr
    unharmed = first.poll() is None
    log(f'second run: refused {refused}, first unharmed {unharmed}: '
        f'{second.stderr.strip().splitlines()[-1:]}')
    workers = subprocess.run(['pgrep', '-P', str(first.pid)], capture_output=True,
                             text=True).stdout.split()
    t0 = time.monotonic()
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    code = finish(first, timeout=60)
    seconds = time.monotonic() - t0
    output = _read(exp + '.log')
    reported = bool(workers) and code not in (0, -9) and 'data loader failed' in output \
        and 'Traceback' not in output
    log(f'dead worker: {len(workers)} child(ren) killed, exit {code} after {seconds:.1f} s')
    return [Row('second run on one experiment folder', 1, int(refused and unharmed), 0,
                'refused, naming the owner\'s PID; the first run unharmed'),
            Row('data-loader worker killed', 1, int(reported), 0,
                f'run stopped with one error line after {seconds:.1f} s')]


# ---------------------------------------------------------------- main

def table(rows: List[Row]) -> str:
    lines = ['| fault | trials | survived | data lost | note |', '|---|---:|---:|---:|---|']
    lines += [f'| {r.fault} | {r.trials} | {r.survived} | {r.lost} | {r.note} |' for r in rows]
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> List[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='the small form CI runs (2 kills of one run, 1 trial of the other '
                             'faults, one preparation script, one kind of damage); '
                             'default: the long form (20 kills: 4 runs x 5)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the kill moments (default 0)')
    parser.add_argument('--workdir', default=None,
                        help='keep the trials here (default: a temporary folder, removed)')
    args = parser.parse_args(argv)
    from apps.cli import prepare_process
    prepare_process()
    rng = random.Random(args.seed)
    niter = 6 if args.quick else 12

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        root = args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix='faults_'))
        os.makedirs(root, exist_ok=True)
        data = make_data(os.path.join(root, 'data'))
        rows = [kill_training(data, root, kills=2 if args.quick else 5, runs=1 if args.quick else 4,
                              niter=niter, rng=rng, log=log)]
        if not args.quick:
            rows.append(kill_training(data, root, kills=3, runs=1, niter=niter, rng=rng, log=log,
                                      processes=2))
        rows.append(kill_checkpoint_writes(root, 1 if args.quick else 20, rng, log))
        rows += kill_preparation(data, root, 1 if args.quick else 5, rng, log,
                                 PREP_SCRIPTS[:1] if args.quick else PREP_SCRIPTS)
        rows.append(damaged_checkpoints(data, root, niter, log,
                                        DAMAGES[-1:] if args.quick else DAMAGES))
        rows.append(disk_full(root, log))
        rows += second_run_and_dead_worker(data, root, niter, log)
    print(table(rows))
    print(f'wall time {time.monotonic() - t0:.0f} s')
    return rows


def failed(rows: Sequence[Row]) -> List[Row]:
    """Rows with a fault not survived or data lost (a skipped fault has no trials)."""
    return [r for r in rows if r.lost or r.survived < r.trials]


if __name__ == '__main__':
    sys.exit(1 if failed(main()) else 0)
