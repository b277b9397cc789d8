"""export_model.py --format onnx (paddle2onnx, repaired and verified) and the ONNX Runtime and
OpenVINO back ends of the denoise routine, on trained-like weights."""
import json
import shutil

import numpy as np
import paddle
import pytest

pytest.importorskip('paddle2onnx')
pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')

import export_model  # noqa: E402
import infer  # noqa: E402
import predict  # noqa: E402
from deploy import runtimes as runtimes_module  # noqa: E402
from core.denoise import DenoiseOptions, denoise_array  # noqa: E402
from deploy.export import GREY_LEVEL_LIMIT, LIMITS, CHECK_IMAGE  # noqa: E402
from deploy.onnx_graph import OnnxConversionError, check_and_repair  # noqa: E402
from networks import build_invnet  # noqa: E402
from utils.image_io import read_image, read_image_raw, write_image  # noqa: E402

DEMO_WEIGHTS = 'pretrained/InvDN_SIDD_mini_demo.pdparams'
# The demo model's operations (paper model, block_num [8, 8]) kept in a block_num [1, 1]
# model: the Haar op and first coupling of each stage. Trained weights behave unlike random
# ones off the image manifold, and the LeakyRelu slope matters on them.
KEPT = {0: 0, 1: 1, 9: 2, 10: 3}


@pytest.fixture(scope='module')
def trained_like(tmp_path_factory):
    """(weights file of a block_num [1, 1] model cut from the demo model, ONNX export dir, checks)."""
    root = tmp_path_factory.mktemp('onnx')
    demo = paddle.load(DEMO_WEIGHTS)
    state = {}
    for name, value in demo.items():
        index = int(name.split('.')[1])
        if index in KEPT:
            state[name.replace(f'operations.{index}.', f'operations.{KEPT[index]}.', 1)] = value
    model = build_invnet(block_num=[1, 1])
    model.set_state_dict(state)
    weights = str(root / 'cut.pdparams')
    paddle.save(model.state_dict(), weights)
    folder = root / 'inference'
    diffs = export_model.main(['--weights', weights, '--block_num', '1', '1', '--format', 'onnx',
                               '--save_inference_dir', str(folder)])
    return weights, folder, diffs


@pytest.fixture(scope='module')
def noisy_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('noisy')
    block = read_image(CHECK_IMAGE)
    write_image(str(root / 'block.png'), block[:96, :112])
    write_image(str(root / 'crop.png'), block[100:137, 50:100])  # padded, non-square
    return root


def test_onnx_export_is_repaired_and_verified(trained_like):
    _, folder, diffs = trained_like
    graph = onnx.load(str(folder / 'model.onnx'))
    alphas = [a.f for node in graph.graph.node if node.op_type == 'LeakyRelu'
              for a in node.attribute if a.name == 'alpha']
    assert alphas and np.allclose(alphas, 0.2)
    assert [i.name for i in graph.graph.input] == ['noisy', 'z']
    assert [d.dim_param or d.dim_value for d in graph.graph.input[1].type.tensor_type.shape.dim] == \
        ['KN', 45, 'H_latent', 'W_latent']
    assert graph.graph.output[0].name == 'denoised'
    assert {'ONNX Runtime, random input', 'ONNX Runtime, real block'} <= set(diffs)
    assert all(diff <= LIMITS[name][0] for name, diff in diffs.items())
    contract = json.loads((folder / 'model_contract.json').read_text())
    assert contract['onnx']['repaired'] == {
        'LeakyRelu.alpha (paddle2onnx does not carry negative_slope over)': len(alphas)}
    assert 'ONNX Runtime, real block' in contract['export_checks']


def test_unrepaired_graph_is_refused_by_the_check(trained_like):
    """paddle2onnx's own graph (alpha: uninitialised values, ~1e-43 or NaN) fails the check."""
    import onnxruntime
    import paddle2onnx

    _, folder, _ = trained_like
    raw = paddle2onnx.export(str(folder / 'model.json'), str(folder / 'model.pdiparams'),
                             save_file=None, opset_version=13)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(raw, options, providers=['CPUExecutionProvider'])
    fixed = onnxruntime.InferenceSession(str(folder / 'model.onnx'), options,
                                         providers=['CPUExecutionProvider'])
    real = read_image(CHECK_IMAGE).transpose(2, 0, 1)[None].astype(np.float32)
    z = np.random.default_rng(0).standard_normal((1, 45, 64, 64), dtype=np.float32)
    outputs = [np.clip(s.run(None, {'noisy': real, 'z': z})[0], 0, 1) for s in (session, fixed)]
    assert not 255 * np.abs(outputs[0] - outputs[1]).max() <= GREY_LEVEL_LIMIT  # NaN fails too


def test_attribute_mismatch_is_refused(trained_like):
    _, folder, _ = trained_like
    graph = onnx.load(str(folder / 'model.onnx'))
    conv = next(node for node in graph.graph.node if node.op_type == 'Conv')
    strides = next(a for a in conv.attribute if a.name == 'strides')
    strides.ints[:] = [3, 3]
    with pytest.raises(OnnxConversionError, match='Conv strides'):
        check_and_repair(graph, str(folder / 'model.json'))


def test_four_backends_give_the_same_images(trained_like, noisy_folder, tmp_path, capsys):
    """dygraph, paddle-inference, onnxruntime and openvino through predict.py (padding,
    self-ensemble, MC samples, tiling of the one routine): within 1 grey level."""
    weights, _, _ = trained_like
    names = ['dygraph', 'paddle-inference', 'onnxruntime']
    if runtimes_module.installed('openvino'):
        names.append('openvino')
    for name in names:
        predict.main(['--input', str(noisy_folder), '--weights', weights, '--block_num', '1', '1',
                      '--backend', name, '--mc_samples', '2', '--self_ensemble', 'True', '--tile', '64',
                      '--tile_overlap', '16', '--seed', '3', '--precision', 'fp32',
                      '--result_dir', str(tmp_path / name)])
        assert f'back end: {name}, fp32' in capsys.readouterr().out
    for image in ('block.png', 'crop.png'):
        reference = read_image_raw(str(tmp_path / 'dygraph' / image)).astype(int)
        for name in names[1:]:
            assert np.abs(read_image_raw(str(tmp_path / name / image)).astype(int) - reference).max() <= 1


def test_infer_backends_on_the_export(trained_like, noisy_folder, tmp_path, capsys):
    _, folder, _ = trained_like
    results = {}
    for name in ('paddle-inference', 'onnxruntime', 'auto'):
        infer.main(['--model_dir', str(folder), '--input', str(noisy_folder), '--backend', name,
                    '--seed', '5', '--result_dir', str(tmp_path / name)])
        results[name] = read_image_raw(str(tmp_path / name / 'block.png')).astype(int)
    chosen = 'openvino' if runtimes_module.installed('openvino') else 'onnxruntime'
    assert f'back end: {chosen} (auto' in capsys.readouterr().out
    assert np.abs(results['onnxruntime'] - results['paddle-inference']).max() <= 1
    assert np.abs(results['auto'] - results['paddle-inference']).max() <= 1


def test_onnx_backend_needs_an_onnx_export(trained_like, tmp_path):
    _, exported, _ = trained_like
    folder = tmp_path / 'paddle_only'  # an export without --format onnx
    folder.mkdir()
    for name in ('model.json', 'model.pdiparams', 'model_contract.json'):
        shutil.copy(exported / name, folder / name)
    with pytest.raises(SystemExit, match='--format onnx'):
        infer.main(['--model_dir', str(folder), '--backend', 'onnxruntime', '--result_dir', str(tmp_path / 'r')])


def test_missing_package_names_the_requirements_file(trained_like, monkeypatch, tmp_path):
    weights, _, _ = trained_like
    monkeypatch.setattr(runtimes_module, 'installed', lambda backend: backend != 'openvino')
    with pytest.raises(SystemExit, match='requirements-deploy.txt'):
        predict.main(['--input', CHECK_IMAGE, '--weights', weights, '--block_num', '1', '1',
                      '--backend', 'openvino', '--result_dir', str(tmp_path / 'r')])
    assert runtimes_module.resolve_backend('auto', gpu=False) == 'onnxruntime'


def test_bf16_refused_where_unsupported(trained_like, monkeypatch, tmp_path):
    pytest.importorskip('openvino')
    from deploy import openvino_runtime

    weights, _, _ = trained_like
    monkeypatch.setattr(openvino_runtime, 'openvino_bf16_supported', lambda: False)
    with pytest.raises(SystemExit, match='AVX512-BF16 or AMX'):
        predict.main(['--input', CHECK_IMAGE, '--weights', weights, '--block_num', '1', '1',
                      '--backend', 'openvino', '--precision', 'bf16', '--result_dir', str(tmp_path / 'r')])
    with pytest.raises(SystemExit, match='onnxruntime'):
        predict.main(['--input', CHECK_IMAGE, '--weights', weights, '--block_num', '1', '1',
                      '--backend', 'onnxruntime', '--precision', 'bf16', '--result_dir', str(tmp_path / 'r')])


def test_openvino_bf16_close_to_fp32(trained_like):
    pytest.importorskip('openvino')
    from core.contract import read_contract
    from deploy.openvino_runtime import OpenVinoBackend, openvino_bf16_supported

    if not openvino_bf16_supported():
        pytest.skip('this CPU has no AVX512-BF16/AMX')
    _, folder, _ = trained_like
    geometry = read_contract(str(folder))
    block = read_image(CHECK_IMAGE)
    outputs = {precision: np.clip(denoise_array(OpenVinoBackend(str(folder / 'model.onnx'), geometry,
                                                                precision), block,
                                                DenoiseOptions(seed=0)), 0, 1)
               for precision in ('fp32', 'bf16')}
    difference = outputs['bf16'] - outputs['fp32']
    assert np.abs(difference).max() > 0  # bf16 really ran (fp32 would be identical)
    assert 10 * np.log10(1 / np.mean(difference ** 2)) >= 40
