"""Denoising users' photos: folders, damaged weights, impossible options, huge headers,
orientation, alpha and file modes, each as predict.py (and infer.py, generate_lq.py) meet it."""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import paddle
import pytest
from PIL import Image

import generate_lq
import predict
from apps.images import denoise_files
from core.contract import Geometry
from core.denoise import DenoiseOptions
from utils.checkpoint import checkpoint_digest
from utils.image_io import read_image_raw, read_photo, write_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` and holds one tiny data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b''))


@pytest.fixture
def photos(tmp_path):
    """A folder of two small noisy photos."""
    rng = np.random.default_rng(0)
    folder = tmp_path / 'photos'
    for name in ('a.png', 'b.png'):
        write_image(str(folder / name), rng.integers(0, 256, (36, 44, 3)).astype(np.uint8))
    return folder


def run_predict(weights, *flags):
    predict.main(['--weights', weights, '--backend', 'dygraph', *flags])


def visible(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith('.'))


def test_a_second_run_into_a_busy_result_dir_is_refused_by_name(small_model_file, photos, tmp_path):
    _, weights = small_model_file
    out = tmp_path / 'out'
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time; from utils.run_lock import RunLock; '
         'RunLock(sys.argv[1]).acquire(); print("held", flush=True); time.sleep(60)', str(out)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(SystemExit, match=rf'{out} is in use by another run .*pid {holder.pid}'):
            run_predict(weights, '--input', str(photos), '--result_dir', str(out))
        assert visible(out) == []
    finally:
        holder.kill()
        holder.wait()
    run_predict(weights, '--input', str(photos), '--result_dir', str(out))  # the folder is free again
    assert visible(out) == ['a.png', 'b.png']
    with pytest.raises(SystemExit, match='--resume'):
        run_predict(weights, '--input', str(photos), '--result_dir', str(out))


def test_result_dir_equal_to_the_input_folder_is_refused_even_with_overwrite(small_model_file, photos):
    _, weights = small_model_file
    before = {name: (photos / name).read_bytes() for name in os.listdir(photos)}
    for target in (photos, photos / '.' ):
        with pytest.raises(SystemExit, match='is the --input folder'):
            run_predict(weights, '--input', str(photos), '--result_dir', str(target), '--overwrite')
    with pytest.raises(SystemExit, match='is the --input folder'):
        run_predict(weights, '--input', str(photos / 'a.png'), '--result_dir', str(photos), '--overwrite')
    assert {name: (photos / name).read_bytes() for name in os.listdir(photos)} == before


def test_resume_skips_finished_images_and_redoes_missing_and_broken_ones(small_model_file, photos,
                                                                         tmp_path, capsys):
    _, weights = small_model_file
    write_image(str(photos / 'c.png'), np.full((36, 44, 3), 99, np.uint8))
    out = tmp_path / 'out'
    run_predict(weights, '--input', str(photos), '--result_dir', str(out), '--seed', '4')
    first = {name: (out / name).read_bytes() for name in visible(out)}
    intact = os.stat(out / 'a.png')
    os.remove(out / 'b.png')  # never written: the run was killed before it
    (out / 'c.png').write_bytes(first['c.png'][:100])  # cut short by another program
    (out / '.c.png.abc123.tmp').write_bytes(b'partial')  # a killed run's temporary file
    capsys.readouterr()
    run_predict(weights, '--input', str(photos), '--result_dir', str(out), '--seed', '4', '--resume')
    assert 'denoised 2 of 3 image(s)' in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in visible(out)} == first
    assert os.stat(out / 'a.png').st_mtime_ns == intact.st_mtime_ns
    assert '.c.png.abc123.tmp' not in os.listdir(out)
    with pytest.raises(SystemExit, match=r'other settings \(seed: 4 -> 5\)'):
        run_predict(weights, '--input', str(photos), '--result_dir', str(out), '--seed', '5', '--resume')


def test_damaged_or_diverged_weights_are_refused(small_model_file, photos, tmp_path):
    model, _ = small_model_file
    state = {key: value.numpy() for key, value in model.state_dict().items()}
    checkpoint = {'state_dict': state, 'config': {'network_G': {'block_num': [1, 1]}}}
    checkpoint['integrity'] = checkpoint_digest(checkpoint)
    key = next(iter(state))
    state[key] = state[key].copy()
    state[key].flat[0] += 0.5  # altered after the checksum was taken, as a flipped byte on disk
    paddle.save(checkpoint, str(tmp_path / 'altered.pdparams'))
    with pytest.raises(SystemExit, match='altered.pdparams is corrupted'):
        run_predict(str(tmp_path / 'altered.pdparams'), '--input', str(photos), '--result_dir', str(tmp_path / 'a'))
    state[key].flat[0] = np.nan
    paddle.save({'state_dict': state, 'config': checkpoint['config']}, str(tmp_path / 'nan.pdparams'))
    with pytest.raises(SystemExit, match=f'holds NaN or Inf in 1 tensor.*{key}'):
        run_predict(str(tmp_path / 'nan.pdparams'), '--input', str(photos), '--result_dir', str(tmp_path / 'b'))
    assert not (tmp_path / 'a' / 'a.png').exists() and not (tmp_path / 'b' / 'a.png').exists()


@pytest.mark.parametrize('flags,match', [
    (['--gaussian_scale', 'nan'], 'gaussian_scale must be a finite number'),
    (['--gaussian_scale', 'inf'], 'gaussian_scale must be a finite number'),
    (['--gaussian_scale', '-1'], 'gaussian_scale must be a finite number'),
    (['--tile', '6', '--tile_overlap', '2'], 'tile must be at least 64'),
    (['--tile', '8', '--tile_overlap', '4'], 'tile must be at least 64'),
    (['--tile', '2', '--tile_overlap', '1'], 'tile must be at least 64'),
    (['--tile', '64', '--tile_overlap', '40'], 'at most half the tile'),
    (['--seed', '-3'], 'seed must be a non-negative integer')])
def test_options_that_cannot_work_stop_before_the_model_is_loaded(small_model_file, photos, tmp_path,
                                                                  capsys, flags, match):
    _, weights = small_model_file
    with pytest.raises(SystemExit, match=match):
        run_predict(weights, '--input', str(photos), '--result_dir', str(tmp_path / 'out'), *flags)
    assert 'weights:' not in capsys.readouterr().out  # said when the model is loaded


def test_a_tile_off_the_downsampling_grid_stops_before_any_image(small_model_file, photos, tmp_path):
    _, weights = small_model_file
    with pytest.raises(SystemExit, match='multiple of the network.s downsampling factor 4, got 66'):
        run_predict(weights, '--input', str(photos), '--result_dir', str(tmp_path / 'out'), '--tile', '66')
    assert visible(tmp_path / 'out') == []


def test_oversized_images_are_reported_and_the_others_denoised(small_model_file, photos, tmp_path):
    _, weights = small_model_file
    (photos / 'claims_60000.png').write_bytes(png_header(60000, 60000))
    write_image(str(photos / 'big.png'), np.zeros((80, 90, 3), np.uint8))
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as failure:
        run_predict(weights, '--input', str(photos), '--result_dir', str(out), '--max_megapixels', '0.005')
    message = str(failure.value.code)
    assert '2 image(s) failed' in message
    assert 'claims_60000.png is 60000 x 60000 = 3600 MP, above the limit of 0.005 MP' in message
    assert 'big.png is 90 x 80 = 0.0072 MP' in message and '--max_megapixels' in message
    assert visible(out) == ['a.png', 'b.png']


def test_generate_lq_refuses_an_oversized_header_and_writes_the_others(tmp_path):
    write_image(str(tmp_path / 'GT' / 'a.png'), np.full((16, 16, 3), 50, np.uint8))
    (tmp_path / 'GT' / 'claims.png').write_bytes(png_header(60000, 60000))
    with pytest.raises(SystemExit, match='claims.png is 60000 x 60000'):
        generate_lq.main(['--input', str(tmp_path), '--num_workers', '0'])
    assert sorted(os.listdir(tmp_path / 'LQ')) == ['a.png']


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_is_applied_on_reading(tmp_path, orientation):
    """A JPEG (EXIF) and a TIFF (its orientation tag) read as PIL shows them."""
    from PIL import ImageOps

    stored = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(str(tmp_path / 'photo.jpg'), exif=exif, quality=100)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / 'photo.jpg'))).astype(int)
    pixels = read_photo(str(tmp_path / 'photo.jpg')).pixels
    assert pixels.shape == shown.shape
    assert np.abs(pixels.astype(int) - shown).max() <= 1  # two JPEG decoders
    Image.fromarray(stored).save(str(tmp_path / 'photo.tif'), tiffinfo={0x0112: orientation})
    np.testing.assert_array_equal(read_photo(str(tmp_path / 'photo.tif')).pixels,
                                  np.asarray(Image.open(tmp_path / 'photo.tif')))


def test_a_rotated_jpeg_comes_out_as_viewers_show_it(small_model_file, tmp_path):
    _, weights = small_model_file
    stored = np.zeros((40, 64, 3), np.uint8)
    stored[:20, :32] = 255  # bright top-left quadrant as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers rotate 90 degrees clockwise: the bright quadrant goes top-right
    (tmp_path / 'in').mkdir()
    Image.fromarray(stored).save(str(tmp_path / 'in' / 'photo.jpg'), exif=exif, quality=95)
    run_predict(weights, '--input', str(tmp_path / 'in'), '--result_dir', str(tmp_path / 'out'),
                '--gaussian_scale', '0')
    out = read_image_raw(str(tmp_path / 'out' / 'photo.png')).astype(float)
    assert out.shape == (64, 40, 3)
    assert out[:32, 20:].mean() > out[:32, :20].mean() + 50  # top-right brighter than top-left


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_alpha_passes_through_unchanged(small_model_file, tmp_path, dtype):
    _, weights = small_model_file
    peak = np.iinfo(dtype).max
    rgb = np.random.default_rng(1).integers(0, peak, (24, 30, 3)).astype(dtype)
    alpha = np.linspace(0, peak, 24 * 30).reshape(24, 30).astype(dtype)
    write_image(str(tmp_path / 'in' / 'cutout.png'), rgb, alpha=alpha)
    run_predict(weights, '--input', str(tmp_path / 'in'), '--result_dir', str(tmp_path / 'out'))
    result = read_photo(str(tmp_path / 'out' / 'cutout.png'))
    assert result.pixels.dtype == dtype and result.depth == (16 if dtype == np.uint16 else 8)
    np.testing.assert_array_equal(result.alpha, alpha)


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_written_files_get_the_mode_the_umask_gives(small_model_file, photos, tmp_path, umask):
    _, weights = small_model_file
    previous = os.umask(umask)
    try:
        run_predict(weights, '--input', str(photos), '--result_dir', str(tmp_path / 'out'))
        paddle_file = tmp_path / 'weights.pdparams'
        from utils.checkpoint import atomic_save

        atomic_save({'x': np.zeros(2)}, str(paddle_file))
    finally:
        os.umask(previous)
    for path in (tmp_path / 'out' / 'a.png', tmp_path / 'out' / '.predict.json', paddle_file):
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask, path


class NanBackend:
    name = 'nan'
    bytes_per_pixel = 100
    geometry = Geometry(channel_in=3, channel_out=3, latent_channels=48, size_multiple=4)

    def restore(self, noisy, z):
        return np.full((z.shape[0],) + noisy.shape[1:], np.nan, np.float32)


def test_a_non_finite_result_is_reported_by_name_and_not_written(photos, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    report = denoise_files(NanBackend(), [str(photos / 'a.png'), str(photos / 'b.png')], str(out),
                           DenoiseOptions(seed=0), progress=False)
    assert report.written == 0 and len(report.failures) == 2
    assert report.failures[0].startswith('a.png: the denoised image holds NaN or Inf')
    assert os.listdir(out) == []


def test_auto_runs_a_small_job_in_dygraph_until_the_weights_are_exported(small_model_file, photos,
                                                                         tmp_path, capsys, monkeypatch):
    from deploy import cache
    from networks.loading import load_network

    _, weights = small_model_file
    monkeypatch.setenv('INVDN_EXPORT_CACHE', str(tmp_path / 'cache'))
    predict.main(['--weights', weights, '--input', str(photos), '--result_dir', str(tmp_path / 'first')])
    said = capsys.readouterr().out
    assert 'back end: dygraph (auto: 0.00 MP to denoise, too little to pay back exporting' in said
    assert not os.path.isdir(tmp_path / 'cache') or not os.listdir(tmp_path / 'cache')
    from deploy.runtimes import ONNX_RUNTIMES, resolve_backend

    fastest = resolve_backend('auto')
    cache.exported_model(load_network(weights), weights, 'onnx' if fastest in ONNX_RUNTIMES else 'paddle',
                         say=None)
    predict.main(['--weights', weights, '--input', str(photos), '--result_dir', str(tmp_path / 'second')])
    said = capsys.readouterr().out
    assert f'back end: {fastest} (auto: the fastest installed' in said
    assert f'{fastest} (auto: the fastest installed for this device), fp32' in said  # small: no bf16
    for name in ('a.png', 'b.png'):  # the same images whichever back end ran
        first = read_image_raw(str(tmp_path / 'first' / name)).astype(int)
        assert np.abs(read_image_raw(str(tmp_path / 'second' / name)).astype(int) - first).max() <= 1


def test_a_grey_photo_comes_back_grey(small_model_file, tmp_path):
    _, weights = small_model_file
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (24, 30)).astype(np.uint8)
    write_image(str(tmp_path / 'in' / 'grey.png'), grey)
    Image.fromarray(np.stack([grey, grey], axis=2), 'LA').save(tmp_path / 'in' / 'grey_alpha.png')
    run_predict(weights, '--input', str(tmp_path / 'in'), '--result_dir', str(tmp_path / 'out'))
    assert Image.open(tmp_path / 'out' / 'grey.png').mode == 'L'
    with_alpha = read_photo(str(tmp_path / 'out' / 'grey_alpha.png'))
    np.testing.assert_array_equal(with_alpha.alpha, grey)
    assert (with_alpha.pixels == with_alpha.pixels[:, :, :1]).all()  # no tint


def test_8_and_16_bit_images_of_one_size_are_not_batched_together(small_model_file, tmp_path):
    _, weights = small_model_file
    rng = np.random.default_rng(5)
    eight = rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)
    write_image(str(tmp_path / 'in' / 'a8.png'), eight)
    write_image(str(tmp_path / 'in' / 'b16.png'), eight.astype(np.uint16) * 257)
    for batch in ('1', '2'):
        run_predict(weights, '--input', str(tmp_path / 'in'), '--result_dir', str(tmp_path / batch),
                    '--batch_size', batch)
    for name in ('a8.png', 'b16.png'):
        np.testing.assert_array_equal(read_image_raw(str(tmp_path / '2' / name)),
                                      read_image_raw(str(tmp_path / '1' / name)))
