"""Validation during training: the official protocol (one z, no self-ensemble, ``scale``
border pixels cropped, uint8), split between the ranks and gathered."""
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from config import Config
from core.denoise import DenoiseOptions, DygraphBackend
from core.evaluate import EvalResult, evaluate_pairs
from networks import InvNet
from training.distributed import gather
from training.errors import TrainingError
from utils.image_io import ImageReadError


def validation_pairs(val_set: paddle.io.Dataset, indices: Sequence[int]
                     ) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
    """(name, noisy HWC, gt HWC), read one at a time (SIDD validation does not fit in memory)."""
    for index in indices:
        sample = val_set[index]
        yield sample['name'], sample['Noisy'].transpose(1, 2, 0), sample['GT'].transpose(1, 2, 0)


def check_validation_set(val_set: paddle.io.Dataset, rank: int, world_size: int) -> None:
    """Read every validation pair once (each rank its share) before training starts, so that
    an unreadable or mis-sized block stops the run at once with one clear error on every
    rank, not at the first validation hours later."""
    problems = []
    for index in range(rank, len(val_set), world_size):
        try:
            val_set[index]
        except (ImageReadError, ValueError, OSError) as err:
            problems.append(str(err))
    problems = [p for rank_problems in gather(problems, world_size) for p in rank_problems]
    if problems:
        raise TrainingError(f'{len(problems)} validation pair(s) cannot be used (fix or remove '
                            'them; nothing was trained):\n  ' + '\n  '.join(problems[:20]))


def validate(net: InvNet, val_set: paddle.io.Dataset, cfg: Config, rank: int = 0,
             world_size: int = 1) -> Tuple[Optional[EvalResult], List[str]]:
    """The official validation: one z sample, no self-ensemble, ``scale`` border cropped, uint8.

    Each rank denoises its share of the blocks (batched); the result of every rank is
    gathered, so all ranks return the same (result, errors), identical to one rank
    validating everything. z comes from a seeded NumPy generator per block (the same every
    time, so PSNR changes only with the weights) and the Paddle RNG is restored
    afterwards: validating never alters training. A block that fails is reported in
    ``errors`` (the result is then None) instead of stopping training.
    """
    paddle_state = paddle.get_rng_state()
    rows: List[Dict[str, Any]] = []
    errors: List[str] = []
    indices = range(rank, len(val_set), world_size)
    try:
        if indices:  # a rank may have no block: more ranks than validation blocks
            result = evaluate_pairs(DygraphBackend(net), validation_pairs(val_set, indices),
                                    DenoiseOptions(seed=cfg.train.manual_seed), crop_border=cfg.scale,
                                    progress=False, batch_size=cfg.datasets.val.batch_size)
            rows = [dict(row, index=index) for row, index in zip(result.per_image, indices)]
            errors = list(result.failed)
    except Exception as err:  # noqa: BLE001 -- any failure (e.g. out of memory) is reported, and
        # every rank still takes part in the gather below, so none is left waiting
        errors = [f'rank {rank}: {type(err).__name__}: {err}']
    finally:
        paddle.set_rng_state(paddle_state)
    gathered = gather((rows, errors), world_size)
    errors = [e for _, rank_errors in gathered for e in rank_errors]
    rows = sorted((row for rank_rows, _ in gathered for row in rank_rows), key=lambda r: r['index'])
    if errors or not rows:
        return None, errors or ['no validation blocks']
    return EvalResult(psnr=float(np.mean([r['psnr'] for r in rows])),
                      ssim=float(np.mean([r['ssim'] for r in rows])),
                      per_image=[{k: v for k, v in r.items() if k != 'index'} for r in rows]), []
