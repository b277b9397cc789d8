"""Data-parallel plumbing of the training loop: the process group, the shared experiment
folder, each rank's random streams, and gathering results from every rank.

Written for ``paddle.distributed.launch`` on GPUs (one process per card) and tested on CPU
with the gloo backend (two processes on one machine, or two "nodes" on loopback).
"""
import os
import random
import uuid
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist

from utils.run_lock import LockedError, RunLock

SHARED_FOLDER_TOKEN = '.every_rank_sees_this_folder'


def world_and_rank() -> tuple:
    """(number of processes, this process's rank) from the launcher's environment."""
    env = dist.ParallelEnv()
    return env.world_size, (env.rank if env.world_size > 1 else 0)


def init_process_group(device: str) -> None:
    """Start the process group for ``device`` ('cpu' or 'gpu').

    On a GPU build Paddle's ``init_parallel_env`` picks NCCL and a CUDA place on its own,
    which would silently override a CPU choice (``-o device=cpu``); ``PADDLE_DISTRI_BACKEND``
    (read by ``init_parallel_env``) makes the CPU choice hold with the gloo backend.
    """
    if device == 'cpu':
        os.environ['PADDLE_DISTRI_BACKEND'] = 'gloo'
    if not dist.is_initialized():
        dist.init_parallel_env()


def gather(obj: Any, world_size: int) -> List[Any]:
    """``obj`` of every rank, in rank order (a collective: every rank must call it)."""
    if world_size == 1:
        return [obj]
    objects: List[Any] = []
    dist.all_gather_object(objects, obj)
    return objects


def check_shared_folder(folder: str, rank: int, world_size: int) -> Optional[str]:
    """None when every rank sees ``folder`` as rank 0 does (checkpoints are written by rank 0
    and read back by every rank on --resume: several nodes need a shared file system);
    otherwise a message naming the ranks that do not."""
    if world_size == 1:
        return None
    token = str(uuid.uuid4()) if rank == 0 else None
    path = os.path.join(folder, SHARED_FOLDER_TOKEN)
    if rank == 0:
        os.makedirs(folder, exist_ok=True)
        with open(path, 'w') as f:
            f.write(token)
    token = gather(token, world_size)[0]
    try:
        with open(path) as f:
            seen = f.read() == token
    except OSError:
        seen = False
    blind = [r for r, ok in enumerate(gather(seen, world_size)) if not ok]
    if rank == 0:
        os.remove(path)
    if not blind:
        return None
    return (f'ranks {blind} do not see the experiment folder {os.path.abspath(folder)} that rank 0 '
            'writes: multi-node training needs a file system shared by every node at the same '
            'path (set path.experiments_root to it)')


def lock_experiment(folder: str, rank: int, world_size: int) -> Optional[RunLock]:
    """Rank 0 takes the experiment folder's lock (utils/run_lock.py) and every rank learns the
    outcome: all raise ``LockedError`` when another run holds it. Returns rank 0's lock."""
    lock, refusal = None, ''
    if rank == 0:
        lock = RunLock(folder)
        try:
            lock.acquire()
        except LockedError as err:
            lock, refusal = None, str(err)
    refusal = gather(refusal, world_size)[0]
    if refusal:
        raise LockedError(refusal)
    return lock


def seed_all(seed: int) -> None:
    """Python, NumPy and Paddle generators from one seed."""
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def _device_generator() -> Optional[Any]:
    """This rank's own GPU generator (None on CPU, whose generator is saved separately)."""
    device = paddle.get_device()
    if not device.startswith('gpu'):
        return None
    index = int(device.split(':')[1]) if ':' in device else 0
    return paddle.base.core.default_cuda_generator(index)


def rank_rng_state() -> Dict[str, Any]:
    """Python, NumPy and Paddle generator states of this process: the CPU generator and this
    rank's own device generator only (``paddle.get_rng_state()`` on a GPU holds one state per
    visible GPU, which another machine cannot restore)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    generator = _device_generator()
    # paddle.load turns arrays into tensors and has no uint32: keep the key as int64.
    return {'python': random.getstate(),
            'numpy': (name, key.astype(np.int64), pos, has_gauss, gauss),
            'paddle_cpu': paddle.base.core.default_cpu_generator().get_state(),
            'device': paddle.get_device(),
            'paddle_device': generator.get_state() if generator is not None else None}


def restore_rank_rng_state(state: Dict[str, Any], reseed: int) -> Optional[str]:
    """Restore ``rank_rng_state()``; where the device's generator cannot be restored (another
    device kind, or a checkpoint that saved one state per visible GPU and another count of
    GPUs), re-seed it with ``reseed`` and return a warning instead of failing."""
    missing = [key for key in ('python', 'numpy') if key not in state]
    if missing or not ('paddle_cpu' in state or 'paddle' in state):
        seed_all(reseed)
        return f'WARNING: the checkpoint\'s RNG state lacks {missing or ["paddle"]}: streams restart from seed {reseed}'
    random.setstate(state['python'])
    name, key, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((name, np.asarray(key, dtype=np.int64).astype(np.uint32),
                         int(pos), int(has_gauss), float(gauss)))
    if 'paddle_cpu' not in state:  # written before per-rank states: paddle.get_rng_state()
        saved, current = list(state['paddle']), paddle.get_rng_state()
        if len(saved) == len(current):
            try:
                paddle.set_rng_state(saved)
                return None
            except ValueError:
                pass
        paddle.seed(reseed)
        return (f'WARNING: the checkpoint holds {len(saved)} Paddle generator state(s) and this '
                f'process has {len(current)} ({paddle.get_device()}): Paddle\'s random stream '
                f'(the z draws) restarts from seed {reseed}, so this run no longer repeats an '
                'uninterrupted one exactly')
    paddle.base.core.default_cpu_generator().set_state(state['paddle_cpu'])
    generator = _device_generator()
    if generator is None:
        if state.get('paddle_device') is not None:
            return (f'WARNING: the checkpoint was written on {state.get("device")} and this rank runs '
                    'on the CPU: the GPU\'s random stream (the z draws there) does not carry over, '
                    'the CPU generator continues')
        return None
    if state.get('paddle_device') is not None and str(state.get('device', '')).split(':')[0] == 'gpu':
        generator.set_state(state['paddle_device'])
        return None
    generator.manual_seed(reseed)
    return (f'WARNING: the checkpoint was written on {state.get("device")} and this rank runs on '
            f'{paddle.get_device()}: the device\'s random stream restarts from seed {reseed}')
