"""SIDD-style evaluation, test_denoising_sidd.py (incl. the benchmark submission) and predict.py."""
import json

import cv2
import numpy as np
import pytest
import scipy.io

import predict
import test_denoising_sidd
from dataloaders import folder_pairs, sidd_mat_pairs
from core.denoise import DenoiseOptions, DygraphBackend, denoise_array
from core.evaluate import evaluate_pairs, score
from tools.make_synthetic_sidd import make_validation_mat, write_mat
from utils.image_io import quantize, read_image, read_image_raw, write_image


@pytest.fixture(scope='module')
def small_checkpoint(small_model_file):
    """The small model as a back end, and its checkpoint."""
    model, path = small_model_file
    return DygraphBackend(model), path


def test_evaluate_pairs_scores_quantised_outputs(synthetic_sidd, small_checkpoint, tmp_path):
    model, _ = small_checkpoint
    pairs = folder_pairs(str(synthetic_sidd / 'val'))
    result = evaluate_pairs(model, pairs, DenoiseOptions(seed=0), progress=False, save_dir=str(tmp_path))
    assert [r['name'] for r in result.per_image] == pairs.names
    for row, (name, noisy, gt) in zip(result.per_image, pairs):
        denoised = denoise_array(model, noisy, DenoiseOptions(seed=0))
        assert (row['psnr'], row['ssim']) == pytest.approx(score(denoised, gt))
        np.testing.assert_array_equal(quantize(read_image(str(tmp_path / name)), 8), quantize(denoised, 8))
    assert result.psnr == pytest.approx(np.mean([r['psnr'] for r in result.per_image]))
    batched = evaluate_pairs(model, pairs, DenoiseOptions(seed=0), progress=False, batch_size=2)
    assert batched.per_image == pytest.approx(result.per_image)


def test_folder_pairs_require_matching_names(tmp_path):
    img = np.zeros((16, 16, 3), np.uint8)
    write_image(str(tmp_path / 'GT' / 'a.png'), img)
    write_image(str(tmp_path / 'Noisy' / 'b.png'), img)
    with pytest.raises(ValueError, match=r"(?s)only in GT/: \['a.png'\].*only in Noisy/: \['b.png'\]"):
        folder_pairs(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='GT/ and Noisy/'):
        folder_pairs(str(tmp_path / 'GT'))


def test_unreadable_pair_is_reported_and_others_scored(synthetic_sidd, small_checkpoint, tmp_path):
    root = tmp_path / 'val'
    for sub in ('GT', 'Noisy'):
        for path in sorted((synthetic_sidd / 'val' / sub).iterdir()):
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub / path.name).write_bytes(path.read_bytes())
    (root / 'Noisy' / '0_0.PNG').write_bytes(b'truncated')
    result = evaluate_pairs(small_checkpoint[0], folder_pairs(str(root)), DenoiseOptions(seed=0), progress=False)
    assert [r['name'] for r in result.per_image] == ['0_1.PNG']
    assert len(result.failed) == 1 and '0_0.PNG' in result.failed[0]


@pytest.mark.parametrize('mat_format', ['v5', 'v7.3'])
def test_sidd_mat_pairs(tmp_path, mat_format):
    gt, noisy = make_validation_mat(str(tmp_path), num_images=2, num_blocks=2, size=32, mat_format=mat_format)
    pairs = sidd_mat_pairs(str(tmp_path))
    assert pairs.names == ['0_0', '0_1', '1_0', '1_1']
    name, noisy_block, gt_block = pairs[3]
    np.testing.assert_array_equal(quantize(noisy_block, 8), noisy[1, 1])
    np.testing.assert_array_equal(quantize(gt_block, 8), gt[1, 1])


def test_sidd_script_metrics_and_submission_layout(small_checkpoint, tmp_path, capsys):
    model, weights = small_checkpoint
    make_validation_mat(str(tmp_path / 'val'), num_images=1, num_blocks=2, size=32)
    bench = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32, 3)).astype(np.uint8)
    write_mat(str(tmp_path / 'BenchmarkNoisyBlocksSrgb.mat'), 'BenchmarkNoisyBlocksSrgb', bench)
    test_denoising_sidd.main(['--weights', weights, '--mat_dir', str(tmp_path / 'val'),
                              '--benchmark_mat', str(tmp_path / 'BenchmarkNoisyBlocksSrgb.mat'),
                              '--submit_dir', str(tmp_path / 'submit'), '--result_dir', str(tmp_path / 'out'),
                              '--mc_samples', '2', '--self_ensemble', 'False', '--seed', '5',
                              '--batch_size', '2', '--progress', 'False', '--backend', 'dygraph'])
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert [r['name'] for r in metrics['per_image']] == ['0_0', '0_1']
    assert f"PSNR: {metrics['psnr']:.2f}" in printed and f"SSIM: {metrics['ssim']:.3f}" in printed
    assert (tmp_path / 'out' / 'metrics.csv').read_text().count('\n') == 3

    submit = scipy.io.loadmat(str(tmp_path / 'submit' / 'SubmitSrgb.mat'))
    denoised = submit['DenoisedBlocksSrgb']
    assert denoised.dtype == np.uint8 and denoised.shape == bench.shape
    assert submit['TimeMPSrgb'].size == 1 and submit['TimeMPSrgb'].item() > 0
    expected = quantize(denoise_array(model, bench[1, 2].astype(np.float32) / 255,
                                      DenoiseOptions(mc_samples=2, seed=5)), 8)
    np.testing.assert_array_equal(denoised[1, 2], expected)


def test_inference_backend_matches_dygraph(small_checkpoint, tmp_path):
    """--backend paddle-inference (the CPU default) gives dygraph's images to within 1 grey level."""
    _, weights = small_checkpoint
    inputs = tmp_path / 'in'
    rng = np.random.default_rng(3)
    for name, size in (('a.png', (36, 44)), ('b.png', (32, 32))):
        write_image(str(inputs / name), rng.random(size + (3,), dtype=np.float32))
    outputs = {}
    for backend in ('dygraph', 'paddle-inference'):
        outputs[backend] = tmp_path / backend
        predict.main(['--input', str(inputs), '--result_dir', str(outputs[backend]), '--weights', weights,
                      '--mc_samples', '2', '--self_ensemble', 'True', '--seed', '7', '--backend', backend])
    for name in ('a.png', 'b.png'):
        dygraph = read_image_raw(str(outputs['dygraph'] / name)).astype(int)
        inference = read_image_raw(str(outputs['paddle-inference'] / name)).astype(int)
        assert dygraph.shape == inference.shape
        assert np.abs(dygraph - inference).max() <= 1


def test_predict_folder_with_corrupt_file(small_checkpoint, tmp_path, capsys):
    model, weights = small_checkpoint
    rng = np.random.default_rng(1)
    inputs, gts = tmp_path / 'in', tmp_path / 'gt'
    clean = rng.integers(0, 256, (30, 41, 3)).astype(np.uint8)
    write_image(str(inputs / 'a.png'), clean)
    write_image(str(gts / 'a.png'), clean)
    write_image(str(inputs / 'deep.tif'), rng.integers(0, 65536, (36, 33, 3)).astype(np.uint16))
    (inputs / 'broken.png').write_bytes(b'not a png')
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exit_info:
        predict.main(['--input', str(inputs), '--result_dir', str(out), '--weights', weights,
                      '--gt_dir', str(gts), '--save_comparison'])
    assert exit_info.value.code not in (0, None) and 'broken.png' in str(exit_info.value.code)
    denoised = cv2.imread(str(out / 'a.png'))
    assert denoised.shape == (30, 41, 3)
    assert cv2.imread(str(out / 'deep.tif'), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    panels = cv2.imread(str(out / 'comparison' / 'a.png'))
    assert panels.shape[1] == 3 * 41 and panels.shape[0] > 30  # captions above the three panels
    assert not (out / 'broken.png').exists()
    psnr, _ = score(denoise_array(model, clean.astype(np.float32) / 255, DenoiseOptions(seed=0)),
                    clean / 255.0)
    assert f'image_name: {inputs / "a.png"}, psnr: {psnr:.4f}' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='--overwrite'):
        predict.main(['--input', str(inputs / 'a.png'), '--result_dir', str(out), '--weights', weights])


def test_missing_weights_say_how_to_get_them(tmp_path):
    write_image(str(tmp_path / 'a.png'), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(SystemExit, match=r'(?s)github.com/Yang-Liu1082/InvDN/tree/main/pretrained.*'
                                         r'tools.convert_torch_weights'):
        predict.main(['--input', str(tmp_path / 'a.png'), '--weights', str(tmp_path / 'missing.pdparams')])
