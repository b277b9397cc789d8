"""The shipped demo model: scripts use it by default, it denoises a real SIDD block, and a
trained model passes the export checks."""
from pathlib import Path

import pytest

import export_model
import predict
from utils.image_io import read_image
from utils.metrics import calculate_psnr
from utils.image_io import quantize

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / 'pretrained' / 'InvDN_SIDD_mini_demo.pdparams'
BLOCK = 'sidd_val_0_0.png'
pytestmark = pytest.mark.skipif(not DEMO.is_file(), reason=f'{DEMO} not shipped in this checkout')


def test_predict_denoises_a_real_block_out_of_the_box(tmp_path, capsys):
    if (REPO / 'pretrained' / 'InvDN_ResUnit_x4.pdparams').is_file():
        pytest.skip('converted official weights present: they are the default')
    predict.main(['--input', str(REPO / 'docs' / 'demo' / 'Noisy' / BLOCK), '--backend', 'dygraph',
                  '--result_dir', str(tmp_path)])
    assert 'InvDN_SIDD_mini_demo.pdparams (the demo model' in capsys.readouterr().out
    gt = quantize(read_image(str(REPO / 'docs' / 'demo' / 'GT' / BLOCK)), 8)
    noisy = quantize(read_image(str(REPO / 'docs' / 'demo' / 'Noisy' / BLOCK)), 8)
    denoised = quantize(read_image(str(tmp_path / BLOCK)), 8)
    assert calculate_psnr(denoised, gt) > calculate_psnr(noisy, gt) + 5  # measured: 23.7 -> 36+ dB


def test_trained_weights_pass_the_export_checks(tmp_path):
    from deploy.export import LIMITS

    differences = export_model.main(['--weights', str(DEMO), '--save_inference_dir', str(tmp_path)])
    assert all(diff <= LIMITS[name][0] for name, diff in differences.items())
