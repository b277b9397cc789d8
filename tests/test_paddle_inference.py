"""The exporter (deploy.export) and the Paddle Inference back end (deploy.paddle_inference) against
the dygraph model, on CPU, and the CPU settings of utils.cpu_speed."""
import os

import numpy as np
import paddle
import pytest

from core.denoise import DenoiseOptions, DygraphBackend, denoise
from deploy.export import export_program
from deploy.paddle_inference import (InferenceModelError, PaddleInferenceBackend, bf16_supported,
                              create_predictor, find_model_files)
from networks.InvDN_model_oneForward import InvNetOneForward

BLOCK_NUM = [1, 1]
Z_CHANNELS = 45


@pytest.fixture(scope='module')
def model() -> InvNetOneForward:
    paddle.seed(3)
    net = InvNetOneForward(block_num=BLOCK_NUM)
    net.eval()
    return net


@pytest.fixture(scope='module')
def model_dir(model, tmp_path_factory) -> str:
    """The model exported by the one exporter (dynamic N, K, H, W; verified)."""
    root = tmp_path_factory.mktemp('inference')
    export_program(model, str(root))
    return str(root)


def inputs(batch: int, height: int, width: int, seed: int = 0, samples: int = 1):
    rng = np.random.default_rng(seed)
    noisy = rng.random((batch, 3, height, width), dtype=np.float32)
    z = rng.standard_normal((samples * batch, Z_CHANNELS, height // 4, width // 4), dtype=np.float32)
    return noisy, z


def test_program_matches_dygraph_on_new_shapes_and_draws(model, model_dir):
    backend = PaddleInferenceBackend(model_dir)
    for batch, height, width, samples in ((2, 40, 56, 1), (1, 64, 32, 1), (2, 32, 36, 3)):
        noisy, z = inputs(batch, height, width, samples=samples)
        with paddle.no_grad():
            expected = model(paddle.to_tensor(noisy), paddle.to_tensor(z)).numpy()
        output = backend.restore(noisy, z)
        assert output.shape == (samples * batch, 3, height, width)
        np.testing.assert_allclose(output, expected, rtol=0, atol=1e-4)


def test_single_thread_predictor_gives_the_same_result(model_dir):
    noisy, z = inputs(1, 32, 48, seed=1)
    default = PaddleInferenceBackend(model_dir).restore(noisy, z)
    single = PaddleInferenceBackend(model_dir, cpu_threads=1).restore(noisy, z)
    np.testing.assert_allclose(single, default, rtol=0, atol=1e-5)


def test_routine_gives_the_same_images_on_both_back_ends(model, model_dir):
    """The one denoise routine, same seed, odd size (padded), MC and self-ensemble."""
    noisy, _ = inputs(2, 35, 43, seed=2)
    options = DenoiseOptions(mc_samples=2, self_ensemble=True, seed=5)
    fast = denoise(PaddleInferenceBackend(model_dir), noisy, options)
    slow = denoise(DygraphBackend(model), noisy, options)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-4)


def test_missing_or_incomplete_model_dir_is_named(tmp_path):
    with pytest.raises(InferenceModelError, match='does not exist'):
        find_model_files(str(tmp_path / 'absent'))
    (tmp_path / 'model.json').write_text('{}')
    with pytest.raises(InferenceModelError, match='model.pdiparams'):
        find_model_files(str(tmp_path))


def test_bad_arguments_are_rejected(model_dir):
    with pytest.raises(ValueError, match='precision'):
        create_predictor(model_dir, precision='int8')
    with pytest.raises(ValueError, match='cpu_threads'):
        create_predictor(model_dir, cpu_threads=0)
    backend = PaddleInferenceBackend(model_dir)
    noisy, z = inputs(2, 32, 32)
    with pytest.raises(ValueError, match='K\\*N rows'):
        backend.restore(noisy, z[:1])
    with pytest.raises(ValueError, match='latent resolution'):
        backend.restore(noisy, z[:, :, :4])
    with pytest.raises(ValueError, match='4-D'):
        backend.restore(noisy[0], z)


@pytest.mark.skipif(bf16_supported(), reason='this CPU runs bf16; the refusal is for CPUs without it')
def test_bf16_is_refused_without_cpu_support(model_dir):
    with pytest.raises(RuntimeError, match='bf16'):
        create_predictor(model_dir, precision='bf16')


def test_configure_cpu_sets_threads_and_keeps_user_settings(monkeypatch):
    from utils import cpu_speed

    for name in ('MKL_NUM_THREADS', 'MKL_DEBUG_CPU_TYPE', 'PADDLE_LOCAL_SIZE'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('MKL_NUM_THREADS', '7')
    monkeypatch.setattr(cpu_speed, 'cpu_info', lambda: {'vendor_id': 'AuthenticAMD', 'flags': 'fma avx2'})
    assert cpu_speed.configure_cpu(threads=3) == {'MKL_DEBUG_CPU_TYPE': '5'}
    assert os.environ['MKL_NUM_THREADS'] == '7'

    monkeypatch.delenv('MKL_NUM_THREADS')
    monkeypatch.delenv('MKL_DEBUG_CPU_TYPE')
    monkeypatch.setattr(cpu_speed, 'cpu_info', lambda: {'vendor_id': 'GenuineIntel', 'flags': 'avx2 avx512f'})
    monkeypatch.setenv('PADDLE_LOCAL_SIZE', str(10 ** 6))  # more launched processes than cores
    assert cpu_speed.configure_cpu() == {'MKL_NUM_THREADS': '1'}
    assert 'MKL_DEBUG_CPU_TYPE' not in os.environ


def test_other_geometry_exports_and_a_program_without_contract_is_refused(tmp_path):
    """A scale-2 model exports (its check runs with its own geometry, not the paper's); a
    program whose contract is missing (a failed or foreign export) is not run."""
    paddle.seed(4)
    net = InvNetOneForward(block_num=[1], down_num=1)
    net.eval()
    export_program(net, str(tmp_path / 'scale2'))
    backend = PaddleInferenceBackend(str(tmp_path / 'scale2'))
    assert (backend.geometry.size_multiple, backend.geometry.latent_channels) == (2, 12)
    noisy = np.random.default_rng(0).random((1, 3, 18, 22), dtype=np.float32)
    options = DenoiseOptions(seed=1)
    np.testing.assert_allclose(denoise(backend, noisy, options), denoise(DygraphBackend(net), noisy, options),
                               rtol=0, atol=1e-4)
    (tmp_path / 'scale2' / 'model_contract.json').unlink()
    with pytest.raises(FileNotFoundError, match='model_contract.json not found'):
        PaddleInferenceBackend(str(tmp_path / 'scale2'))
