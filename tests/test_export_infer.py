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
                               '--save_inference_dir', str(root / 'inference')])
    return weights, root / 'inference', diffs


@pytest.fixture(scope='module')
def image_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(3)
    for name, shape in (('a.png', (72, 100, 3)), ('b.png', (72, 100, 3)), ('c.png', (37, 30, 3))):
        clean = rng.integers(30, 220, shape).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)
        write_image(str(root / 'clean' / name), clean)
        write_image(str(root / 'noisy' / name), noisy)
    return root / 'noisy', root / 'clean'


def test_export_writes_program_and_contract(exported):
    _, folder, diffs = exported
    assert (folder / 'model.pdiparams').is_file()
    assert (folder / 'model.json').is_file() or (folder / 'model.pdmodel').is_file()
    from deploy.export import LIMITS, PROGRAM_CHECKS

    assert set(diffs) == set(PROGRAM_CHECKS)
    assert all(diff <= LIMITS[name][0] for name, diff in diffs.items())
    contract = json.loads((folder / 'model_contract.json').read_text())
    assert [i['name'] for i in contract['inputs']] == ['noisy', 'z']
    assert contract['inputs'][1]['shape'] == [-1, 45, -1, -1]
    assert contract['size_multiple'] == 4 and contract['latent_channels'] == 48


def test_export_refuses_to_overwrite(exported):
    weights, folder, _ = exported
    with pytest.raises(SystemExit, match='--overwrite'):
        export_model.main(['--weights', weights, '--block_num', '1', '1',
                           '--save_inference_dir', str(folder)])


def test_infer_matches_predict_with_same_seed(exported, image_folders, tmp_path, capsys):
    weights, folder, _ = exported
    noisy_dir, clean_dir = image_folders
    infer.main(['--model_dir', str(folder), '--input', str(noisy_dir), '--gt_dir', str(clean_dir),
                '--batch_size', '2', '--seed', '4', '--result_dir', str(tmp_path / 'infer'),
                '--benchmark', 'True'])
    printed = capsys.readouterr().out
    # auto_log's report layout: its sections and fields, with this run's settings.
    for field in ('Env info', 'Paddle info', 'Conf info', 'Model info', 'Data info', 'Perf info',
                  'paddle_version: ', 'runtime_device: cpu', 'enable_mkldnn: True',
                  'cpu_math_library_num_threads: ', 'precision: fp32', 'batch_size: 2',
                  'data_num: 3', 'cpu_rss(MB): ', 'preprocess_time(ms): ', 'inference_time(ms): ',
                  'postprocess_time(ms): ', 'ips: '):
        assert field in printed, field
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
        infer.main(['--model_dir', str(tmp_path / 'nothing'), '--input', str(image_folders[0])])


def test_infer_ensembles_and_tiles_like_predict_with_tipc_spellings(exported, image_folders, tmp_path):
    """infer.py runs the same routine as predict.py: MC samples, self-ensemble and tiling
    give the same images; TIPC's hyphenated spellings are accepted."""
    weights, folder, _ = exported
    noisy_dir, _ = image_folders
    flags = ['--seed', '2', '--mc_samples', '2', '--self_ensemble', '--tile', '64', '--tile_overlap', '16']
    infer.main(['--model-dir', str(folder), '--input', str(noisy_dir), '--use-gpu', 'False',
                '--batch-size', '1', '--result_dir', str(tmp_path / 'infer'), *flags])
    predict.main(['--input', str(noisy_dir), '--weights', weights, '--block_num', '1', '1',
                  '--backend', 'dygraph', '--result_dir', str(tmp_path / 'predict'), *flags])
    for name in ('a.png', 'b.png', 'c.png'):
        by_infer = cv2.imread(str(tmp_path / 'infer' / name)).astype(int)
        by_predict = cv2.imread(str(tmp_path / 'predict' / name)).astype(int)
        assert np.abs(by_infer - by_predict).max() <= 1


def test_jpeg_results_are_written_losslessly(exported, tmp_path):
    weights, _, _ = exported
    write_image(str(tmp_path / 'in' / 'photo.jpg'), np.full((20, 24, 3), 128, np.uint8))
    predict.main(['--input', str(tmp_path / 'in'), '--weights', weights, '--block_num', '1', '1',
                  '--backend', 'dygraph', '--result_dir', str(tmp_path / 'out')])
    assert sorted(p.name for p in (tmp_path / 'out').iterdir() if not p.name.startswith('.')) == ['photo.png']
    predict.main(['--input', str(tmp_path / 'in'), '--weights', weights, '--block_num', '1', '1',
                  '--backend', 'dygraph', '--result_dir', str(tmp_path / 'same'), '--output_format', 'same'])
    assert sorted(p.name for p in (tmp_path / 'same').iterdir() if not p.name.startswith('.')) == ['photo.jpg']


def test_arguments_are_checked_before_the_model_is_loaded(exported, image_folders, tmp_path):
    """Impossible tiles, missing inputs and existing results fail at once, with one line."""
    weights, folder, _ = exported
    noisy_dir, _ = image_folders
    with pytest.raises(SystemExit, match='tile_overlap'):
        infer.main(['--model_dir', str(folder), '--input', str(noisy_dir), '--tile', '64',
                    '--tile_overlap', '40', '--result_dir', str(tmp_path / 'a')])
    with pytest.raises(SystemExit, match='--input: .*missing.png not found'):
        predict.main(['--input', str(tmp_path / 'missing.png'), '--weights', weights])
    with pytest.raises(SystemExit, match='--gt_dir'):
        predict.main(['--input', str(noisy_dir), '--gt_dir', str(tmp_path / 'nowhere'), '--weights', weights])


def test_infer_without_input_denoises_the_shipped_block(exported, tmp_path, capsys):
    _, folder, _ = exported
    infer.main(['--model_dir', str(folder), '--result_dir', str(tmp_path / 'demo')])
    printed = capsys.readouterr().out
    assert 'input: docs/demo/Noisy' in printed and 'sidd_val_0_0.png, psnr: ' in printed
    assert (tmp_path / 'demo' / 'sidd_val_0_0.png').is_file()


@pytest.mark.parametrize('switches', [['--enable_mkldnn', 'False', '--cpu_threads', '1'],
                                      ['--enable-mkldnn', 'True', '--cpu-threads', '2']])
def test_inference_switches_give_predicts_images(exported, image_folders, tmp_path, switches, capsys):
    """oneDNN on or off and any thread count: the same images as predict.py (fp32)."""
    weights, folder, _ = exported
    noisy_dir, _ = image_folders
    infer.main(['--model_dir', str(folder), '--input', str(noisy_dir), '--seed', '3',
                '--result_dir', str(tmp_path / 'infer'), '--benchmark', 'True', *switches])
    printed = capsys.readouterr().out
    assert f'enable_mkldnn: {switches[1]}' in printed
    assert f'cpu_math_library_num_threads: {switches[3]}' in printed
    predict.main(['--input', str(noisy_dir), '--weights', weights, '--block_num', '1', '1',
                  '--backend', 'dygraph', '--seed', '3', '--result_dir', str(tmp_path / 'predict')])
    for name in ('a.png', 'b.png', 'c.png'):
        by_infer = cv2.imread(str(tmp_path / 'infer' / name)).astype(int)
        by_predict = cv2.imread(str(tmp_path / 'predict' / name)).astype(int)
        assert np.abs(by_infer - by_predict).max() <= 1


def test_impossible_switch_combinations_fail_with_one_line(exported, image_folders, tmp_path):
    _, folder, _ = exported
    noisy_dir, _ = image_folders
    common = ['--model_dir', str(folder), '--input', str(noisy_dir)]
    with pytest.raises(SystemExit, match='bf16 runs through oneDNN'):
        infer.main([*common, '--precision', 'bf16', '--enable_mkldnn', 'False',
                    '--result_dir', str(tmp_path / 'a')])
    with pytest.raises(SystemExit, match='fp16 is a GPU option'):
        infer.main([*common, '--precision', 'fp16', '--use_gpu', 'False', '--result_dir', str(tmp_path / 'b')])
    with pytest.raises(SystemExit, match='use_tensorrt needs the GPU'):
        infer.main([*common, '--use_tensorrt', 'True', '--use_gpu', 'False', '--result_dir', str(tmp_path / 'c')])


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason='the fallback is for CPU-only Paddle builds')
def test_tipc_use_gpu_true_falls_back_to_the_cpu_and_says_so(exported, image_folders, tmp_path, capsys):
    """TIPC's template passes --use_gpu True on every machine (as Paddle Inference's own
    enable_use_gpu, infer.py then runs on the CPU); --device gpu stays an error."""
    _, folder, _ = exported
    noisy_dir, _ = image_folders
    infer.main(['--model_dir', str(folder), '--input', str(noisy_dir), '--use_gpu', 'True',
                '--result_dir', str(tmp_path / 'a')])
    assert 'sees no GPU; running on the CPU' in capsys.readouterr().out
    assert len(list((tmp_path / 'a').glob('*.png'))) == 3
    with pytest.raises(SystemExit, match='device=gpu'):
        infer.main(['--model_dir', str(folder), '--input', str(noisy_dir), '--device', 'gpu',
                    '--result_dir', str(tmp_path / 'b')])
