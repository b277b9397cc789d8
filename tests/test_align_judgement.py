"""The verdicts of tools.align_training on made-up curves: the same-batches drift limit and the
independent-stream test over seeds. No training and no official checkout needed."""
import numpy as np
import pytest

from tools.align_training import MIN_SEEDS, drift_check, judge_independent, welch_p

ITERS, WINDOW = 200, 50


def curve(rng: np.random.Generator, scale: float = 1.0, noise: float = 0.3) -> list:
    """A decaying loss with multiplicative per-iteration noise, as training curves look."""
    level = 5e4 * np.exp(-np.arange(ITERS) / 20) + 600
    return (scale * level * np.exp(noise * rng.standard_normal(ITERS))).tolist()


def run(rng: np.random.Generator, scale: float, psnr_shift: float, seed_offset: float) -> dict:
    """One seed of one code: its total loss and validation PSNR every 50 iterations."""
    psnr = [[it, 15 + it / 50 + seed_offset + psnr_shift + 0.5 * rng.standard_normal()] for it in range(50, 201, 50)]
    return {'total': curve(rng, scale * np.exp(seed_offset / 10)), 'val_psnr': psnr}


def seeds(n: int, paddle_scale: float = 1.0, paddle_psnr_shift: float = 0.0) -> dict:
    """n seeds; each seed moves both codes alike (shared initialisation), as in the tool."""
    rng = np.random.default_rng(n)
    runs = {}
    for seed in range(n):
        offset = rng.normal(0, 1)
        runs[seed] = {'paddle': run(rng, paddle_scale, paddle_psnr_shift, offset), 'torch': run(rng, 1.0, 0.0, offset)}
    return runs


def test_same_dynamics_pass_over_seeds():
    summary = judge_independent(seeds(6), WINDOW)
    assert summary['judged'] and not summary['failed'], summary['failed']
    assert len(summary['tests']) == ITERS // WINDOW + 4
    assert all(len(t['paddle']) == len(t['torch']) == 6 for t in summary['tests'])


@pytest.mark.parametrize('scale, shift, failing', [(1.25, 0.0, 'log loss'), (1.0, -3.0, 'val PSNR')])
def test_a_code_that_learns_differently_fails(scale, shift, failing):
    """A loss 25 % higher throughout, or a PSNR 3 dB lower, is outside the spread between seeds."""
    summary = judge_independent(seeds(6, scale, shift), WINDOW)
    assert summary['failed'] and all(f.startswith(failing) for f in summary['failed']), summary['failed']


def test_too_few_seeds_are_reported_but_not_judged():
    summary = judge_independent(seeds(MIN_SEEDS - 1, paddle_scale=2.0), WINDOW)
    assert not summary['judged'] and not summary['failed']
    assert summary['tests'][0]['p'] < 1


def test_welch_p_of_constant_samples():
    assert welch_p([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]) == 1.0
    assert welch_p([1.0, 1.0, 1.0], [2.0, 2.0, 2.0]) == 0.0
    assert welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def same_batches(drift_after: int, drift: float) -> dict:
    """Torch fp64, torch fp32 off it by a growing floor, Paddle off torch fp32 by `drift` after an iteration."""
    fp64 = np.array(curve(np.random.default_rng(0), noise=0.0))
    floor = np.minimum(1e-7 * 1.1 ** np.arange(ITERS), 0.05)
    fp32 = fp64 * (1 + floor)
    ours = fp32 * (1 + np.where(np.arange(ITERS) >= drift_after, drift, 1e-7))
    return {'paddle': {'total': ours.tolist()}, 'torch': {'total': fp32.tolist()},
            'torch_fp64': {'total': fp64.tolist()}}


def test_drift_within_the_float32_floor_passes_and_beyond_it_fails():
    assert drift_check(same_batches(10, 5e-6))[2] == []
    failed = drift_check(same_batches(10, 1e-3))[2]
    assert failed and 'from iteration 11' in failed[0]
    assert drift_check(same_batches(150, 0.4))[2] == []  # floor 0.05 by then: limit 0.5
    assert drift_check(same_batches(150, 0.6))[2]


def test_detectable_difference_is_where_the_test_starts_to_reject():
    """welch_detectable gives the shift at which welch_p crosses the level, for these spreads."""
    from tools.align_training import welch_detectable

    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 5), rng.normal(0, 2, 4)
    b = b - b.mean() + a.mean()
    edge = welch_detectable(a, b, 0.01)
    assert welch_p(a, b + 0.99 * edge) > 0.01 > welch_p(a, b + 1.01 * edge)
