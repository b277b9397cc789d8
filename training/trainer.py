"""The InvDN training loop, shared by train_denoising_1card.py and train_denoising_4cards.py.

One iteration follows the official ``InvDN_model.optimize_parameters`` and ``train.py``:
forward the noisy crop, the InvDN objective (losses.InvDNLoss), backward, clip the
gradient by its global norm (torch ``clip_grad_norm_``), an Adam step with L2 weight
decay, then one MultiStepDecay step. On several cards ``paddle.DataParallel`` averages
the gradients, every card reads its own part of each global batch, validation is split
between the cards, and rank 0 logs and writes files (training/distributed.py).

Runs are counted in iterations and are resumable: a checkpoint holds the weights, the
Adam moments, the schedule position and every rank's RNG states, and the batch of each
iteration depends only on the seed and the iteration number (dataloaders.sampler), so
a resumed run continues exactly as if it had not stopped.

The loss terms stay on the device between sync points (every ``logger.print_freq``
iterations, and before every validation and checkpoint): a GPU is not stalled by a host
read each step, and a non-finite loss is caught before any checkpoint could hold it.
"""
import math
import multiprocessing
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm import tqdm

from config import Config, config_yaml, experiment_dir, world_size_rule
from dataloaders import create_dataset
from dataloaders.sampler import ResumableBatchSampler
from losses import InvDNLoss
from networks import build_invnet
from training.amp import MixedPrecision
from training.devices import configure_gpu, select_cpu_conv
from training.distributed import (check_shared_folder, gather, init_process_group, lock_experiment,
                                  rank_rng_state, restore_rank_rng_state, seed_all, world_and_rank)
from training.ema import WeightAverage
from training.errors import TrainingError
from training.loaders import InlineLoader, ReportingDataset
from training.optim import build_optimizer
from training.validation import check_validation_set, validate
from utils.checkpoint import (EMA_KEY, LATEST, CheckpointError, atomic_save, compare_state_dicts,
                              describe_mismatch, find_resumable, iteration_checkpoints, load_weights,
                              read_training_checkpoint, save_training_checkpoint,
                              training_checkpoint, with_integrity)
from utils.durable import DiskFullError, atomic_write_bytes, remove_stale_temps
from utils.device import on_gpu, select_device
from utils.image_io import ImageReadError, read_header
from utils.logging_utils import ScalarWriter, close_logger, plot_training_curves, setup_logger
from utils.run_lock import LOCK_NAME, LockedError, RunLock, is_locked

BEST = 'model_best.pdparams'
LOSS_TERMS = ('l_forw_fit', 'l_back_rec', 'l_grad_back', 'l_ssim_back')
LOGGED = ('total',) + LOSS_TERMS
# Per-iteration costs of the training log line (seconds, and samples on this card).
COSTS = ('reader_cost', 'batch_cost', 'samples')
# Entries of paddle's optimizer state dict that are not per-parameter accumulators.
OPTIMIZER_EXTRA_KEYS = ('LR_Scheduler', 'master_weights')


def find_checkpoint(cfg: Config) -> Tuple[str, Dict[str, Any], List[str]]:
    """What ``--resume`` continues: the newest readable checkpoint of the experiment
    (``model_latest.pdparams``, else the kept ``model_iter_<N>.pdparams``, newest first),
    its content, and a warning per damaged newer file it passed over."""
    models_dir = os.path.join(experiment_dir(cfg), 'models')
    path, state, warnings = find_resumable(models_dir)
    if path is None:
        if warnings:
            raise TrainingError(f'--resume: no readable checkpoint in {models_dir}:\n  '
                                + '\n  '.join(warnings) + '\n  start a new run (-o name=NEW_NAME)')
        raise TrainingError(f'--resume: no checkpoint at {os.path.join(models_dir, LATEST)}; train '
                            'without --resume, or name one with -o path.resume_state=PATH')
    return path, state, warnings


def check_experiment_dir(cfg: Config, resuming: bool) -> str:
    """The experiment folder. A non-empty one is reused only when resuming, never cleared;
    one that a live run holds (its lock file) is refused either way."""
    folder = experiment_dir(cfg)
    if is_locked(folder):
        raise TrainingError(RunLock.refusal(folder))
    contents = [name for name in os.listdir(folder) if name != LOCK_NAME] \
        if os.path.isdir(folder) else []
    # A start that failed before its first checkpoint left only its logs: a plain rerun
    # starts again in the folder (its logs go on), rather than being sent to --resume.
    if not resuming and contents and has_checkpoint(folder):
        raise TrainingError(
            f'experiment folder {folder} already exists and is not empty. Continue that run '
            'with --resume, or start a new one with -o name=NEW_NAME (or another '
            'path.experiments_root); nothing was changed')
    return folder


def has_checkpoint(folder: str) -> bool:
    """Whether the experiment ``folder`` holds a checkpoint a run could continue from."""
    models_dir = os.path.join(folder, 'models')
    return os.path.exists(os.path.join(models_dir, LATEST)) or bool(iteration_checkpoints(models_dir))


def training_sets(cfg: Config, world_size: int) -> Tuple[Any, Any]:
    """The training and validation datasets, checked against the configuration before the
    experiment folder is made: both folders pair (GT/Noisy), the total batch is no larger
    than the training set, and GT_size fits the smallest training image (read from the
    image headers)."""
    data_cfg = cfg.datasets.train
    try:
        train_set = create_dataset(data_cfg, 'train', cfg.scale, seed=cfg.train.manual_seed)
        val_set = create_dataset(cfg.datasets.val, 'val', cfg.scale)
    except (OSError, ValueError) as err:
        raise TrainingError(str(err)) from None
    if data_cfg.batch_size * world_size > len(train_set):
        raise TrainingError(f"config key 'datasets.train.batch_size' ({data_cfg.batch_size} per "
                            f'process x {world_size}) is larger than the {len(train_set)} training '
                            f'image(s) of {data_cfg.dataroot}')
    smallest = None
    for name in train_set.names:
        path = os.path.join(train_set.gt_dir, name)
        try:
            header = read_header(path)
        except ImageReadError as err:
            raise TrainingError(str(err)) from None
        side = min(header.width, header.height)
        if smallest is None or side < smallest[0]:
            smallest = (side, path, header)
    if smallest and data_cfg.GT_size > smallest[0]:
        _, path, header = smallest
        raise TrainingError(f"config key 'datasets.train.GT_size' ({data_cfg.GT_size}) is larger than "
                            f'the smallest training image, {path} ({header.width} x {header.height}); '
                            'lower it or leave that image out')
    return train_set, val_set


def config_changes(old: Dict[str, Any], new: Dict[str, Any], prefix: str = '') -> List[str]:
    """'key: old -> new' for every leaf that differs (``path`` excluded)."""
    changes = []
    for key in sorted(set(old) | set(new)):
        full = f'{prefix}{key}'
        if full == 'path':
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += config_changes(a, b, full + '.')
        elif a != b:
            changes.append(f'{full}: {a!r} -> {b!r}')
    return changes


class Trainer:
    """State of one training run; ``run()`` trains from the current iteration to ``niter``."""

    def __init__(self, cfg: Config, resume: bool = False):
        self.cfg = cfg
        self.world_size, self.rank = world_and_rank()
        self.is_main = self.rank == 0
        resuming = bool(cfg.path.resume_state) or resume
        self.exp_dir = check_experiment_dir(cfg, resuming=resuming)
        self.models_dir = os.path.join(self.exp_dir, 'models')
        self.lock = None
        self.sample_errors: Optional[Any] = None  # messages of unreadable samples from workers
        notes: List[str] = []
        try:
            select_device(cfg.device)
        except (RuntimeError, ValueError) as err:
            raise TrainingError(str(err)) from None
        self.amp = MixedPrecision(cfg.train.amp)  # refused before anything is written
        self.train_set, self.val_set = training_sets(cfg, self.world_size)  # before the folder
        if self.world_size > 1:
            init_process_group('cpu' if not on_gpu() else 'gpu')
            problem = check_shared_folder(self.exp_dir, self.rank, self.world_size)
            if problem:
                raise TrainingError(problem)
        try:
            self.lock = lock_experiment(self.exp_dir, self.rank, self.world_size)
        except LockedError as err:
            raise TrainingError(str(err)) from None
        try:
            self._setup(cfg, resume, notes)
        except BaseException:
            self._release()
            raise

    def _setup(self, cfg: Config, resume: bool, notes: List[str]) -> None:
        if self.lock is not None:
            if self.lock.stale_owner:
                notes.append(f'Took over the lock of a run that ended without releasing it '
                             f'({self.lock.stale_owner})')
            # The lock is held: temporary files here are a killed writer's, never a live one's.
            removed = remove_stale_temps(self.models_dir)
            if removed:
                notes.append(f'Removed {len(removed)} unfinished temporary file(s) a killed '
                             f'run left in {self.models_dir}: {removed}')
        state, resume_path = None, cfg.path.resume_state
        if resume_path:
            state = self._read_checkpoint(resume_path)
        elif resume:
            resume_path, state, warnings = find_checkpoint(cfg)
            notes += warnings
            if warnings:
                notes.append(f'WARNING: resuming from the older checkpoint {resume_path}')
        self.device = paddle.get_device()  # what runs, after the launcher's choice
        conv3x3, conv_line = select_cpu_conv(cfg.train.cpu_conv if not on_gpu() else 'paddle')
        notes.append(conv_line)
        train_cfg, data_cfg, seed = cfg.train, cfg.datasets.train, cfg.train.manual_seed
        if self.world_size != train_cfg.world_size:
            notes.append(f'WARNING: the configuration is set for train.world_size = '
                         f'{train_cfg.world_size} card(s) and this run has {self.world_size}: the '
                         'total batch and the batch-to-lr ratio differ from the paper setting. '
                         f'The rule would give {world_size_rule(cfg, self.world_size)}; apply it '
                         'with --scale_to_world_size')
        if on_gpu():
            configure_gpu(train_cfg)

        check_validation_set(self.val_set, self.rank, self.world_size)
        if on_gpu() and self.train_set.lq_dir is None:
            notes.append(f'WARNING: no LQ/ folder in {data_cfg.dataroot}: LQ is computed on the fly '
                         'in every epoch (its cost: docs/training.md), work taken from the '
                         'loader workers that feed the GPU; write it once with: python generate_lq.py '
                         f'--input {data_cfg.dataroot}')
        # One seed on every rank: identical initial weights. Then each rank draws its own z
        # (the official DDP code repeats one z stream on every card).
        seed_all(seed)
        self.net = build_invnet(**cfg.network_G.to_dict(), conv3x3=conv3x3)
        if cfg.path.pretrain_model_G and not resume_path:
            load_weights(self.net, cfg.path.pretrain_model_G)
        if self.rank:
            seed_all(seed + self.rank)
        self.model = paddle.DataParallel(self.net) if self.world_size > 1 else self.net
        # A run keeps the optimiser kind it began with (checkpoints before multi-tensor: plain).
        self.multi_tensor = state['optimizer_kind'] == 'adam_multi_tensor' if state else True
        self.optimizer, self.scheduler = build_optimizer(train_cfg, self.model.parameters(),
                                                         self.multi_tensor)
        self.loss_fn = InvDNLoss.from_config(train_cfg)
        self.model, self.optimizer = self.amp.decorate(self.model, self.optimizer)
        self.ema: Optional[WeightAverage] = None
        if train_cfg.ema_decay:
            rng_state = paddle.get_rng_state()  # the copy's initial draws leave training's z alone
            averaged = build_invnet(**cfg.network_G.to_dict(), conv3x3=conv3x3)
            paddle.set_rng_state(rng_state)
            self.ema = WeightAverage(self.net, averaged, train_cfg.ema_decay)

        self.iteration, self.best_psnr = 0, -math.inf
        self.history: Dict[str, Any] = {'loss': {term: [] for term in LOGGED},
                                        'val_psnr': [], 'val_ssim': []}
        if state:
            notes += self._resume(resume_path, state)
        if self.iteration > train_cfg.niter:
            raise TrainingError(f'{resume_path} is at iteration {self.iteration}, beyond '
                                f'train.niter = {train_cfg.niter}; raise train.niter')
        self.sampler = ResumableBatchSampler(
            self.train_set, data_cfg.batch_size, train_cfg.niter, start_iter=self.iteration,
            seed=seed, num_replicas=self.world_size, rank=self.rank, shuffle=data_cfg.use_shuffle)
        if data_cfg.n_workers > 0:
            self.sample_errors = multiprocessing.SimpleQueue()
            self.loader = paddle.io.DataLoader(ReportingDataset(self.train_set, self.sample_errors),
                                               batch_sampler=self.sampler,
                                               num_workers=data_cfg.n_workers,
                                               use_shared_memory=data_cfg.use_shared_memory)
        else:
            # Paddle's loader without workers reads in a thread whose exception is lost while
            # the main thread waits for a batch forever: read in the main thread instead.
            self.loader = InlineLoader(self.train_set, self.sampler)
        if self.is_main:
            self._open_logs(resume_path, notes)

    def _read_checkpoint(self, path: str) -> Dict[str, Any]:
        try:
            return read_training_checkpoint(path)
        except CheckpointError as err:
            raise TrainingError(f'path.resume_state: {err}') from None

    def _resume(self, path: str, state: Dict[str, Any]) -> List[str]:
        """Restore weights, Adam state, schedule, counters and RNG streams; return notes to log."""
        weights = state['state_dict']
        mismatch = compare_state_dicts(self.net.state_dict(), weights)
        if any(mismatch):
            raise TrainingError(describe_mismatch(path, *mismatch)
                                + '\n  (network_G must be the one of the run that wrote it)')
        self.net.set_state_dict(weights)
        notes = []
        if self.ema is not None:
            if EMA_KEY in state:
                self.ema.set_state_dict(state[EMA_KEY])
            else:
                self.ema = WeightAverage(self.net, self.ema.net, self.ema.decay)
                notes.append(f'{path} holds no averaged weights: the average '
                             '(train.ema_decay) starts from its weights')
        elif EMA_KEY in state:
            notes.append(f'train.ema_decay is 0: the averaged weights of {path} are not continued')
        # Adam's accumulators are keyed by parameter names (conv2d_0.w_0_moment1_0, ...):
        # refuse a state that would silently not apply.
        names = [p.name for p in self.net.parameters()]
        foreign = [key for key in state['optimizer'] if key not in OPTIMIZER_EXTRA_KEYS
                   and not any(key.startswith(name + '_') for name in names)]
        if foreign:
            raise TrainingError(f'{path}: optimizer state does not match the model parameters '
                                f'(e.g. {foreign[:3]})')
        self.optimizer.set_state_dict(state['optimizer'])
        self.scheduler.set_state_dict(state['lr_scheduler'])
        self.iteration = int(state['iter'])
        self.best_psnr = float(state['best_psnr'])
        self.history = state['history'] or self.history
        notes.insert(0, f'Resumed from {path} at iteration {self.iteration}')
        rng_states = state['rng_states']
        reseed = self.cfg.train.manual_seed + 7919 * self.iteration + self.rank
        if len(rng_states) == self.world_size:
            warning = restore_rank_rng_state(rng_states[self.rank], reseed)
            if warning:
                notes.append(warning)
        else:
            seed_all(reseed)
            notes.append(f'WARNING: {path} was written by {len(rng_states)} processes and this '
                         f'run has {self.world_size}: RNG streams restart from seed {reseed}')
        changes = config_changes(state['config'], self.cfg.to_dict())
        if changes:
            notes.append('WARNING: configuration differs from the checkpoint: '
                         + '; '.join(changes))
        if self.cfg.path.pretrain_model_G:
            notes.append('path.pretrain_model_G is ignored when resuming')
        return notes

    def _open_logs(self, resume_path: Optional[str], notes: List[str]) -> None:
        cfg, data_cfg = self.cfg, self.cfg.datasets.train
        os.makedirs(self.models_dir, exist_ok=True)
        atomic_write_bytes(os.path.join(self.exp_dir, f'config_resume_{self.iteration}.yml'
                                        if resume_path else 'config.yml'), config_yaml(cfg).encode('utf-8'))
        self.logger = setup_logger('invdn.train', os.path.join(self.exp_dir, 'train.log'))
        self.val_logger = setup_logger('invdn.val', os.path.join(self.exp_dir, 'val.log'),
                                       screen=False)
        self.writer = ScalarWriter(os.path.join(self.exp_dir, 'visualdl'))
        for note in notes:
            self.logger.info(note)
        if cfg.path.pretrain_model_G and not resume_path:
            self.logger.info(f'Initial weights: {cfg.path.pretrain_model_G}')
        self.logger.info(
            f'{cfg.name}: device {self.device} x {self.world_size}, batch {data_cfg.batch_size} '
            f'per card ({data_cfg.batch_size * self.world_size} in total), '
            f'{len(self.train_set)} training images ({self.sampler.batches_per_epoch} iterations '
            f'per epoch), {len(self.val_set)} validation images, '
            f'{sum(p.size for p in self.net.parameters()):,d} parameters, iterations '
            f'{self.iteration} -> {cfg.train.niter}, Adam{" (multi-tensor)" if self.multi_tensor else ""}, '
            f'VisualDL {"on" if self.writer.enabled else "off (pip install visualdl)"}')

    def close(self) -> None:
        try:
            if self.is_main:
                self.writer.close()
                close_logger(self.logger)
                close_logger(self.val_logger)
        finally:
            self._release()

    def _release(self) -> None:
        if self.sample_errors is not None:
            self.sample_errors.close()
            self.sample_errors = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def checkpoint(self, rng_states: List[Dict[str, Any]]) -> Dict[str, Any]:
        return training_checkpoint(self.net.state_dict(), self.optimizer.state_dict(),
                                   self.scheduler.state_dict(), self.iteration, self.best_psnr,
                                   rng_states, self.cfg.to_dict(), self.history,
                                   'adam_multi_tensor' if self.multi_tensor else 'adam',
                                   self.ema.state_dict() if self.ema is not None else None)

    def _check_weights(self) -> str:
        """Before a checkpoint: the weights are finite (a finite loss can still be followed by
        an update that is not), and data parallel kept every rank's weights identical (the
        checkpoint holds rank 0's, so a divergence would go unnoticed). Compares float64 sums
        of w, |w| and w^2 of every rank."""
        weights = [p.astype('float64') for p in self.net.parameters()]
        local = paddle.stack([sum(w.sum() for w in weights), sum(w.abs().sum() for w in weights),
                              sum((w * w).sum() for w in weights)])
        values = [tuple(c) for c in gather(local.numpy().tolist(), self.world_size)]
        if not all(math.isfinite(v) for rank_values in values for v in rank_values):
            raise TrainingError(f'non-finite weights after iteration {self.iteration}; stopped without '
                                'saving them. Lower train.lr_G or check the training data')
        if self.world_size == 1:
            return ''
        if len(set(values)) != 1:
            raise TrainingError(f'the weights of the {self.world_size} ranks differ at iteration '
                                f'{self.iteration} (checksums {values}); the checkpoint would '
                                'hold only rank 0\'s')
        return f' (weights identical on all {self.world_size} ranks)'

    def step(self, batch: Dict[str, Any]) -> paddle.Tensor:
        """One optimisation step; returns the loss terms (averaged over the cards) as a tensor
        on the device, read by ``_settle`` at the next sync point."""
        with self.amp.autocast():
            total, terms = self.loss_fn(self.model, batch['Noisy'], batch['LQ'], batch['GT'])
        stacked = paddle.stack([total.astype('float32')]
                               + [terms[t].astype('float32') for t in LOSS_TERMS]).detach()
        if self.world_size > 1:
            dist.all_reduce(stacked)  # the same values, and the same NaN verdict, on every card
            stacked = stacked / self.world_size
        self.optimizer.clear_grad()
        self.amp.backward_and_step(total, self.optimizer)
        self.scheduler.step()
        self.iteration += 1
        if self.ema is not None:
            self.ema.update(self.iteration)
        return stacked

    def _settle(self, pending: List[Tuple[int, paddle.Tensor]]) -> List[Dict[str, float]]:
        """Read the loss terms of the iterations since the last sync point; a non-finite one
        stops every card before anything else is validated or saved."""
        rows = []
        host = paddle.stack([stacked for _, stacked in pending]).numpy()  # one device read
        for (iteration, _), row in zip(pending, host):
            values = dict(zip(LOGGED, row.tolist()))
            if not all(math.isfinite(v) for v in values.values()):
                latest = os.path.join(self.models_dir, LATEST)
                raise TrainingError(
                    f'non-finite loss at iteration {iteration} ('
                    + ', '.join(f'{k} {v:.4e}' for k, v in values.items())
                    + (f', mean over {self.world_size} cards' if self.world_size > 1 else '')
                    + f'); stopped at iteration {self.iteration} without saving. Last good '
                    'checkpoint: ' + (latest if os.path.isfile(latest) else 'none saved yet')
                    + '. Lower train.lr_G or check the training data')
            rows.append(values)
        return rows

    def _batches(self) -> Iterator[Dict[str, Any]]:
        """The loader's batches; a worker that fails (e.g. out of shared memory) is one error
        that says what to do."""
        iterator = None
        while True:
            try:
                if iterator is None:
                    iterator = iter(self.loader)
                batch = next(iterator)
            except StopIteration:
                return
            except (RuntimeError, SystemError) as err:
                raise self._loader_error(err) from None
            except (ImageReadError, ValueError, OSError) as err:  # no workers: raised here
                raise self._sample_error(str(err)) from None
            yield batch

    def _sample_error(self, message: str) -> TrainingError:
        again = ('continue with --resume' if has_checkpoint(self.exp_dir) else
                 'run the same command again (no checkpoint was written yet)')
        return TrainingError(f'a training sample cannot be used at iteration {self.iteration + 1}: '
                             f'{message}. Fix or remove the file, then {again}')

    def _loader_error(self, err: BaseException) -> TrainingError:
        """A failed or dead loader worker as one error. Paddle notices a dead worker at once
        (its SIGCHLD handler raises SystemError in the main thread, wherever it is) or ends the
        batch queue with one: the run stops instead of waiting for a batch forever."""
        if self.sample_errors is not None and not self.sample_errors.empty():
            return self._sample_error(self.sample_errors.get())
        return TrainingError(
            f'the data loader failed at iteration {self.iteration + 1}: '
            f'{" ".join(str(err).split())[:300]}. A worker died (killed, e.g. by the '
            'out-of-memory killer) or its workers ran out of shared memory '
            '(/dev/shm; 64 MB by default in Docker): give the container more '
            '(docker run --shm-size=1g), or set datasets.train.use_shared_memory=false '
            'or fewer datasets.train.n_workers. Continue with --resume')

    def run(self) -> None:
        cfg, print_freq = self.cfg, self.cfg.logger.print_freq
        window: Dict[str, List[float]] = {key: [] for key in LOGGED + COSTS}
        pending: List[Tuple[int, paddle.Tensor]] = []
        bar = tqdm(total=cfg.train.niter, initial=self.iteration, disable=not self.is_main,
                   dynamic_ncols=True, desc=cfg.name, unit='it')
        self.model.train()
        try:
            iteration_start = time.perf_counter()
            for batch in self._batches():
                window['reader_cost'].append(time.perf_counter() - iteration_start)
                window['samples'].append(float(batch['GT'].shape[0]))
                lr = self.optimizer.get_lr()
                pending.append((self.iteration + 1, self.step(batch)))
                bar.update(1)
                last = self.iteration == cfg.train.niter
                if not (self.iteration % print_freq == 0 or last or self._validate_now()
                        or self._save_now()):
                    window['batch_cost'].append(time.perf_counter() - iteration_start)
                    iteration_start = time.perf_counter()
                    continue
                for values in self._settle(pending):
                    for key, value in values.items():
                        window[key].append(value)
                pending = []
                # Costs up to the sync point (the device's queue is drained at _settle).
                window['batch_cost'].append(time.perf_counter() - iteration_start)
                if self.iteration % print_freq == 0 or last:
                    if self.is_main:
                        self._log_train(lr, window)
                        bar.set_postfix(loss=f'{np.mean(window["total"]):.4g}', lr=f'{lr:.2e}')
                    window = {key: [] for key in LOGGED + COSTS}
                self._validate_and_save()
                iteration_start = time.perf_counter()  # costs count training only
        except SystemError as err:
            if 'DataLoader' not in str(err):
                raise
            raise self._loader_error(err) from None
        finally:
            bar.close()
        if self.is_main:
            best = (f'best validation PSNR {self.best_psnr:.4f} dB' if math.isfinite(self.best_psnr)
                    else 'no validation ran (train.val_freq > train.niter)')
            self.logger.info(f'Training finished at iteration {self.iteration}; {best}')

    def _log_train(self, lr: float, window: Dict[str, List[float]]) -> None:
        """One line per print_freq iterations (and at the last), in the format of Paddle's
        reproduction guide (ArticleReproduction_CV.md, 3.12) that TIPC's benchmark parses:
        every loss term averaged over those iterations, the mean time per iteration spent
        waiting for data (avg_reader_cost) and in all (avg_batch_cost), samples per iteration
        on this card (avg_samples) and samples per second (avg_ips)."""
        means = {key: float(np.mean(window[key])) for key in LOGGED}
        reader, batch_cost = float(np.mean(window['reader_cost'])), float(np.mean(window['batch_cost']))
        samples = float(np.mean(window['samples']))
        ips = samples / batch_cost
        # Counted from 1, as the iteration: 'Epoch 2/2, iter: 10/10' is the last of both.
        epoch = (self.iteration - 1) // self.sampler.batches_per_epoch + 1
        epochs = -(-self.cfg.train.niter // self.sampler.batches_per_epoch)
        self.logger.info(f'[Epoch {epoch}/{epochs}, iter: {self.iteration}/{self.cfg.train.niter}] '
                         f'lr: {lr:.5e}, loss: {means["total"]:.5e}, '
                         + ''.join(f'{k}: {means[k]:.5e}, ' for k in LOSS_TERMS)
                         + f'avg_reader_cost: {reader:.5f} sec, avg_batch_cost: {batch_cost:.5f} sec, '
                         f'avg_samples: {samples:g}, avg_ips: {ips:.5f} samples/sec')
        for key, value in means.items():
            self.history['loss'][key].append([self.iteration, value])
        self.writer.add_scalars({f'train/{k}': v for k, v in means.items()}, self.iteration)
        self.writer.add_scalars({'train/lr': lr, 'train/ips': ips}, self.iteration)

    def _validate_now(self) -> bool:
        return self.iteration % self.cfg.train.val_freq == 0

    def _save_now(self) -> bool:
        return (self.iteration % self.cfg.logger.save_checkpoint_freq == 0
                or self.iteration == self.cfg.train.niter)

    def _validate_and_save(self) -> None:
        it = self.iteration
        validate_now, save_now = self._validate_now(), self._save_now()
        if not (validate_now or save_now):
            return
        # Collectives: every rank takes part.
        rng_states = gather(rank_rng_state(), self.world_size)
        ranks_note = self._check_weights() if save_now else ''
        result, errors = validate(self.ema.net if self.ema is not None else self.net, self.val_set,
                                  self.cfg, self.rank, self.world_size) if validate_now else (None, [])
        # With averaging, the trained weights themselves too: the curve that shows what it steadies.
        raw = validate(self.net, self.val_set, self.cfg, self.rank, self.world_size)[0] \
            if validate_now and self.ema is not None else None
        if not self.is_main:
            return
        if errors:
            message = (f'iter {it:8d} validation failed, training continues: '
                       + '; '.join(errors[:5]))
            self.val_logger.info(message)
            self.logger.info('WARNING: ' + message)
        if result is not None:
            self.history['val_psnr'].append([it, result.psnr])
            self.history['val_ssim'].append([it, result.ssim])
            improved = result.psnr > self.best_psnr
            self.best_psnr = max(self.best_psnr, result.psnr)
            message = (f'iter {it:8d} psnr {result.psnr:.4f} ssim {result.ssim:.4f} '
                       f'(best psnr {self.best_psnr:.4f})')
            if raw is not None:
                self.history.setdefault('val_psnr_raw', []).append([it, raw.psnr])
                message += f'; without averaging: psnr {raw.psnr:.4f}'
            self.val_logger.info(message)
            self.logger.info('Validation: ' + message)
            self.writer.add_scalars({'val/psnr': result.psnr, 'val/ssim': result.ssim}, it)
            if improved:
                self._write(lambda: atomic_save(with_integrity(self.checkpoint(rng_states)),
                                                os.path.join(self.models_dir, BEST)))
            plot_training_curves(os.path.join(self.exp_dir, 'training_curves.png'),
                                 self.history['loss'], self.history['val_psnr'],
                                 self.history.get('val_psnr_raw'))
        if save_now:
            path = self._write(lambda: save_training_checkpoint(
                self.checkpoint(rng_states), self.models_dir, self.cfg.logger.keep_checkpoints))
            self.logger.info(f'Saved {path} at iteration {it}{ranks_note}')

    def _write(self, save: Any) -> Any:
        """Run ``save``; a full disk stops training with one message (the earlier checkpoints
        are intact: utils/durable.py)."""
        try:
            return save()
        except DiskFullError as err:
            raise TrainingError(f'{err}. Training stopped at iteration {self.iteration}; after '
                                'freeing space continue with --resume') from None


def train(cfg: Config, resume: bool = False) -> None:
    """Train InvDN as configured; ``resume`` continues the experiment's latest checkpoint.

    ``path.resume_state`` names a checkpoint explicitly (and wins over ``resume``). Under
    ``paddle.distributed.launch`` with several processes, trains data-parallel.
    """
    # Fresh parameter names (conv2d_0.w_0, ...) on every call: Adam's state is keyed by them.
    with paddle.utils.unique_name.guard():
        trainer = Trainer(cfg, resume)
        try:
            trainer.run()
        except DiskFullError as err:  # a log line or plot: checkpoints are handled in _write
            raise TrainingError(f'{err}. Training stopped at iteration {trainer.iteration}; '
                                'after freeing space continue with --resume') from None
        finally:
            trainer.close()
