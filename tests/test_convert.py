"""tools/convert_torch_weights.py on checkpoints in the official layout, and (when the
official checkout is available) tools/align_with_torch.py end to end."""
import os
from pathlib import Path

import numpy as np
import pytest

from networks import InvNet
from tools.convert_torch_weights import convert_file, convert_state_dict, main
from utils.checkpoint import WeightsError, load_weights

BLOCKS = [1, 1]


def official_layout_state(torch, shapes, prefix: str = ''):
    """Random tensors under the official names and shapes, as the official code saves them."""
    generator = torch.Generator().manual_seed(0)
    return {prefix + name: torch.randn(shape, generator=generator) for name, shape in shapes(BLOCKS).items()}


@pytest.mark.parametrize('wrap', ['plain', 'module_prefix', 'state_dict'])
def test_converts_official_layout_exactly(tmp_path, wrap, official_state_dict_shapes):
    torch = pytest.importorskip('torch')
    state = official_layout_state(torch, official_state_dict_shapes,
                                  'module.' if wrap == 'module_prefix' else '')
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'converted.pdparams'
    torch.save({'state_dict': state} if wrap == 'state_dict' else state, src)

    assert convert_file(str(src), str(dst), block_num=BLOCKS) == len(state)
    model = InvNet(block_num=BLOCKS)
    load_weights(model, str(dst))
    for name, value in model.state_dict().items():
        key = 'module.' + name if wrap == 'module_prefix' else name
        np.testing.assert_array_equal(value.numpy(), state[key].numpy())


def test_refuses_wrong_checkpoint_and_lists_keys(tmp_path, official_state_dict_shapes):
    torch = pytest.importorskip('torch')
    state = official_layout_state(torch, official_state_dict_shapes)
    del state['operations.1.G.conv3.bias']
    state['operations.1.G.conv4.weight'] = torch.zeros(1)
    state['operations.3.H.conv1.weight'] = torch.zeros(64, 4, 3, 3)
    with pytest.raises(WeightsError) as info:
        convert_state_dict(state, InvNet(block_num=BLOCKS), source='bad.pth')
    message = str(info.value)
    assert 'bad.pth' in message
    assert '1 missing keys: operations.1.G.conv3.bias' in message
    assert '1 unexpected keys: operations.1.G.conv4.weight' in message
    assert 'operations.3.H.conv1.weight: [64, 4, 3, 3] vs expected [64, 3, 3, 3]' in message

    src, dst = tmp_path / 'paper.pth', tmp_path / 'converted.pdparams'
    # a [1, 1] checkpoint for the [8, 8] model
    torch.save(official_layout_state(torch, official_state_dict_shapes), src)
    with pytest.raises(SystemExit, match='unexpected|missing'):
        main(['--input', str(src), '--output', str(dst)])
    assert not dst.exists()


def test_never_overwrites_without_flag(tmp_path, official_state_dict_shapes):
    torch = pytest.importorskip('torch')
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pdparams'
    torch.save(official_layout_state(torch, official_state_dict_shapes), src)
    dst.write_bytes(b'keep me')
    args = ['--input', str(src), '--output', str(dst), '--block_num', '1', '1']
    with pytest.raises(SystemExit, match='--overwrite'):
        main(args)
    assert dst.read_bytes() == b'keep me'
    main(args + ['--overwrite'])
    load_weights(InvNet(block_num=BLOCKS), str(dst))


def official_checkout() -> Path:
    """INVDN_TORCH_REPO, else ../InvDN beside the repository (as the other official-code tests)."""
    return Path(os.environ.get('INVDN_TORCH_REPO', Path(__file__).resolve().parents[2] / 'InvDN'))


@pytest.mark.skipif(not (official_checkout() / 'codes').is_dir()
                    and not (official_checkout() / 'models').is_dir(),
                    reason='official InvDN checkout not found (set INVDN_TORCH_REPO)')
def test_alignment_with_official_code_passes(tmp_path):
    pytest.importorskip('torch')
    from tools.align_with_torch import main as align

    status = align(['--torch_repo', str(official_checkout()), '--result_dir', str(tmp_path),
                    '--block_num', '1', '1', '--size', '32', '--batch_size', '1'])
    report = (tmp_path / 'report.md').read_text()
    assert status == 0, report
    assert (tmp_path / 'gradients_paddle.npy').is_file()
    assert '| forward | 1 |' in report
