"""The export cache (deploy.cache): a script's second run with the same weights exports nothing,
two processes that miss at once export once, and another weights file gets its own export."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle

import predict
from deploy import cache as cache_module
from deploy.export import CHECK_IMAGE
from networks.loading import load_network
from utils.image_io import read_image_raw

REPO = Path(__file__).resolve().parents[1]


def counting_exports(monkeypatch) -> list:
    calls = []
    export = cache_module.export_program
    monkeypatch.setattr(cache_module, 'export_program',
                        lambda *args, **kwargs: calls.append(args[1]) or export(*args, **kwargs))
    return calls


def test_second_predict_run_costs_no_export(small_model_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('INVDN_EXPORT_CACHE', str(tmp_path / 'cache'))
    exports = counting_exports(monkeypatch)
    _, weights = small_model_file
    for run in ('first', 'second'):
        predict.main(['--input', CHECK_IMAGE, '--weights', weights, '--backend', 'paddle-inference',
                      '--result_dir', str(tmp_path / run)])
    out = capsys.readouterr().out
    assert len(exports) == 1
    assert out.count('exporting and verifying the model once') == 1 and '(cached)' in out
    name = os.path.basename(CHECK_IMAGE)
    np.testing.assert_array_equal(read_image_raw(str(tmp_path / 'first' / name)),
                                  read_image_raw(str(tmp_path / 'second' / name)))


def test_other_weights_and_formats_get_their_own_export(small_model_file, tmp_path, monkeypatch):
    monkeypatch.setenv('INVDN_EXPORT_CACHE', str(tmp_path / 'cache'))
    _, weights = small_model_file
    model = load_network(weights)
    other = tmp_path / 'other.pdparams'
    paddle.save({'state_dict': {k: v * 1.001 for k, v in model.state_dict().items()}}, str(other))
    first = cache_module.exported_model(model, weights, say=None)
    assert cache_module.exported_model(model, weights, say=None) == first
    assert cache_module.exported_model(model, str(other), say=None) != first
    onnx = cache_module.exported_model(model, weights, 'onnx', say=None)
    assert onnx != first and os.path.isfile(os.path.join(onnx, 'model.onnx'))
    assert not [p for p in os.listdir(tmp_path / 'cache') if p.endswith('.tmp')]


def test_an_incomplete_entry_is_exported_again(small_model_file, tmp_path, monkeypatch):
    """A folder without its contract (an export stopped midway) is never opened."""
    monkeypatch.setenv('INVDN_EXPORT_CACHE', str(tmp_path / 'cache'))
    _, weights = small_model_file
    model = load_network(weights)
    folder = cache_module.exported_model(model, weights, say=None)
    os.remove(os.path.join(folder, 'model_contract.json'))
    exports = counting_exports(monkeypatch)
    assert cache_module.exported_model(model, weights, say=None) == folder
    assert len(exports) == 1 and cache_module.is_complete(folder, 'paddle')


def test_two_processes_that_miss_at_once_export_once(small_model_file, tmp_path):
    _, weights = small_model_file
    script = ('import sys\n'
              'from networks.loading import load_network\n'
              'from deploy.cache import exported_model\n'
              'print(exported_model(load_network(sys.argv[1]), sys.argv[1]))\n')
    env = dict(os.environ, INVDN_EXPORT_CACHE=str(tmp_path / 'cache'))
    runs = [subprocess.Popen([sys.executable, '-c', script, weights], cwd=REPO, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    lines = [out.strip().splitlines() for out, _ in outputs]
    assert sum('exporting and verifying' in line for out in lines for line in out) == 1
    assert lines[0][-1] == lines[1][-1]
    shutil.rmtree(tmp_path / 'cache')
