"""export_model.py and infer.py (Paddle Inference) against the dynamic model and predict.py."""
import json

import cv2
import numpy as np
import paddle
import pytest

import export_model
import infer
import predict
from networks import build_invnet
from utils.image_io import write_image
from utils.metrics import calculate_psnr


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """(weights, export dir, max diff per export check) for a block_num [1, 1] model."""
    root = tmp_path_factory.mktemp('export')
    paddle.seed(1)
    model = build_invnet(block_num=[1, 1])
    weights = str(root / 'small.pdparams')
    paddle.save(model.state_dict(), weights)  # a bare state dict: architecture from the flags
    diffs = export_model.main(['--weights', weights, '--block_num', '1', '1',
                               '--save-inference-dir', str(root / 'inference')])
    return weights, root / 'inference', diffs


@pytest.fixture(scope='module')
def image_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(3)
    for name, shape in (('a.png', (40, 48, 3)), ('b.png', (40, 48, 3)), ('c.png', (37, 30, 3))):
        clean = rng.integers(30, 220, shape).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)
        write_image(str(root / 'clean' / name), clean)
        write_image(str(root / 'noisy' / name), noisy)
    return root / 'noisy', root / 'clean'


def test_export_writes_program_and_contract(exported):
    _, folder, diffs = exported
    assert (folder / 'model.pdiparams').is_file()
    assert (folder / 'model.json').is_file() or (folder / 'model.pdmodel').is_file()
    assert set(diffs) == {'paddle.jit.load', 'Paddle Inference'} and max(diffs.values()) <= 1e-4
    contract = json.loads((folder / 'model_contract.json').read_text())
    assert [i['name'] for i in contract['inputs']] == ['noisy', 'z']
    assert contract['inputs'][1]['shape'] == [-1, 45, -1, -1]
    assert contract['size_multiple'] == 4 and contract['latent_channels'] == 48


def test_export_refuses_to_overwrite(exported):
    weights, folder, _ = exported
    with pytest.raises(SystemExit, match='--overwrite'):
        export_model.main(['--weights', weights, '--block_num', '1', '1',
                           '--save-inference-dir', str(folder)])


def test_infer_matches_predict_with_same_seed(exported, image_folders, tmp_path, capsys):
    weights, folder, _ = exported
    noisy_dir, clean_dir = image_folders
    infer.main(['--model-dir', str(folder), '--noisy-dir', str(noisy_dir), '--clean-dir', str(clean_dir),
                '--batch-size', '2', '--seed', '4', '--result_dir', str(tmp_path / 'infer'),
                '--benchmark', 'True'])
    printed = capsys.readouterr().out
    assert 'inference_time' in printed
    predict.main(['--input', str(noisy_dir), '--weights', weights, '--block_num', '1', '1',
                  '--seed', '4', '--result_dir', str(tmp_path / 'predict')])
    psnrs = np.load(tmp_path / 'infer' / 'output_inference_engine.npy', allow_pickle=True).item()['psnr']
    for k, name in enumerate(('a.png', 'b.png', 'c.png')):
        by_infer = cv2.imread(str(tmp_path / 'infer' / name))
        by_predict = cv2.imread(str(tmp_path / 'predict' / name))
        assert by_infer.shape == cv2.imread(str(noisy_dir / name)).shape
        assert np.abs(by_infer.astype(int) - by_predict.astype(int)).max() <= 1
        assert psnrs[k] == pytest.approx(calculate_psnr(by_infer, cv2.imread(str(clean_dir / name))))


def test_infer_reports_missing_model(tmp_path, image_folders):
    with pytest.raises(SystemExit, match='export_model.py'):
        infer.main(['--model-dir', str(tmp_path / 'nothing'), '--noisy-dir', str(image_folders[0])])
