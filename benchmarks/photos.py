"""Real photos: what tiling changes, a 12 MP photo through predict.py, memory per back end.

    python -m benchmarks.photos [--sidd_dir ../shared/SIDD_mini] [--weights W] [--rows ...] [--json F]

The photos are mosaics of real noisy SIDD blocks (``train_mini/Noisy`` of --sidd_dir, 512 x 512;
without that folder the synthetic blocks of tools/make_synthetic_sidd.py), each block cropped
to 500 x 500 and every other round of them mirrored. Rows (--rows):

- ``seams``: a 2000 x 1000 (2 MP) mosaic denoised whole and in tiles of each --seam_tiles with
  each --overlaps, same seed, OpenVINO fp32 (Paddle Inference without OpenVINO): the largest
  and the mean difference from the whole image in grey levels of the 8-bit results, and the
  share of pixels that differ at all.
- ``photo``: a 4000 x 3000 (12 MP) mosaic through ``python predict.py --input PHOTO`` with the
  defaults in a child process: wall seconds, peak resident memory, the back end it chose;
  beside it that back end's seconds per 256 x 256 block (a repeated size, as tiles are) and
  the target of 1.3 x that rate x the photo's pixels.
- ``sizes``: OpenVINO (bf16 where the CPU has it, and fp32) on inputs of 256 x 256 to
  1516 x 1356: seconds per 256 x 256 of a model compiled for any size and of one compiled for
  the input's size (what deploy.openvino_runtime chooses between, and what --tile auto's
  largest tile is chosen by), and how long compiling for a size takes.
- ``memory``: for each back end and precision, the peak resident memory above the loaded
  model while one 512 x 512 and one 1024 x 1024 image are denoised whole, per pixel (what
  ``Backend.bytes_per_pixel`` holds, for --tile auto), in a child process each.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from apps import cli
from benchmarks.report import write_json

ROWS = ('seams', 'photo', 'sizes', 'memory')
MEMORY_BACKENDS = (('dygraph', 'fp32'), ('paddle-inference', 'fp32'), ('onnxruntime', 'fp32'),
                   ('openvino', 'fp32'), ('openvino', 'bf16'))
BLOCK = 500


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--sidd_dir', default=os.path.join(cli.REPO_ROOT, '..', 'shared', 'SIDD_mini'),
                        help='SIDD_mini folder whose train_mini/Noisy blocks make the photos '
                             '(absent: synthetic blocks)')
    parser.add_argument('--weights', default=None, help='weights (None: the order of predict.py)')
    parser.add_argument('--rows', nargs='+', choices=ROWS, default=list(ROWS), help='rows to run')
    parser.add_argument('--seam_tiles', type=int, nargs='+', default=[256, 512], help='tile sizes of the seams row')
    parser.add_argument('--overlaps', type=int, nargs='+', default=[0, 8, 16, 32, 64],
                        help='overlaps of the seams row')
    parser.add_argument('--seed', type=int, default=0, help='latent seed')
    parser.add_argument('--json', default=None, help='also write the figures to this JSON file')
    parser.add_argument('--memory_child', nargs=3, default=None, metavar=('BACKEND', 'PRECISION', 'SIDE'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def noisy_blocks(sidd_dir: str) -> List[np.ndarray]:
    """Real SIDD noisy blocks (uint8 RGB), or synthetic ones when ``sidd_dir`` is absent."""
    from utils.image_io import list_images, read_image_raw

    folder = os.path.join(sidd_dir, 'train_mini', 'Noisy')
    if not os.path.isdir(folder):
        from tools.make_synthetic_sidd import make_patch_folders

        folder = os.path.join(tempfile.mkdtemp(prefix='invdn_photos_'), 'patches')
        make_patch_folders(folder, num_pairs=10, size=512)
        folder = os.path.join(folder, 'Noisy')
    return [read_image_raw(path)[:BLOCK, :BLOCK] for path in list_images(folder)]


def mosaic(blocks: List[np.ndarray], rows: int, cols: int) -> np.ndarray:
    """``rows`` x ``cols`` blocks, cycling through ``blocks``, every other round mirrored."""
    picks = [blocks[k % len(blocks)][:, ::-1] if (k // len(blocks)) % 2 else blocks[k % len(blocks)]
             for k in range(rows * cols)]
    return np.concatenate([np.concatenate(picks[r * cols:(r + 1) * cols], axis=1) for r in range(rows)])


def open_backend(model, weights: str, name: str, precision: str):
    from core.denoise import DygraphBackend
    from deploy.cache import exported_model
    from deploy.runtimes import ONNX_RUNTIMES, open_runtime

    if name == 'dygraph':
        return DygraphBackend(model)
    folder = exported_model(model, weights, 'onnx' if name in ONNX_RUNTIMES else 'paddle', False, say=None)
    return open_runtime(name, folder, False, precision)


def seams(args: argparse.Namespace, model, weights: str, blocks: List[np.ndarray]) -> Dict[str, object]:
    from core.denoise import DenoiseOptions, denoise_array
    from deploy.runtimes import installed
    from utils.image_io import quantize

    name = 'openvino' if installed('openvino') else 'paddle-inference'
    backend = open_backend(model, weights, name, 'fp32')
    photo = mosaic(blocks, 2, 4)
    whole = quantize(denoise_array(backend, photo, DenoiseOptions(seed=args.seed)), 8).astype(int)
    rows = []
    for tile in args.seam_tiles:
        for overlap in args.overlaps:
            if 2 * overlap > tile:
                continue
            start = time.perf_counter()
            tiled = denoise_array(backend, photo, DenoiseOptions(seed=args.seed, tile=tile, tile_overlap=overlap))
            seconds = time.perf_counter() - start
            diff = np.abs(quantize(tiled, 8).astype(int) - whole)
            rows.append({'tile': tile, 'overlap': overlap, 'max_grey_levels': int(diff.max()),
                         'mean_grey_levels': float(diff.mean()), 'differing_share': float((diff > 0).mean()),
                         'seconds': seconds})
            print(f'seams: tile {tile}, overlap {overlap}: max {diff.max()}, mean {diff.mean():.4f} grey '
                  f'levels ({seconds:.1f} s)', flush=True)
    return {'backend': f'{name} fp32', 'image': list(photo.shape[:2]), 'rows': rows}


def block_rate(model, weights: str, name: str, precision: str, repeats: int = 7) -> float:
    """Median seconds per 256 x 256 restore, the size repeated (as a photo's tiles are)."""
    backend = open_backend(model, weights, name, precision)
    rng = np.random.default_rng(0)
    noisy = rng.random((1, 3, 256, 256), dtype=np.float32)
    z = rng.standard_normal((1, backend.geometry.z_channels, 64, 64), dtype=np.float32)
    for _ in range(2):
        backend.restore(noisy, z)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.restore(noisy, z)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# Runs a command and reports its peak memory. A child's peak includes its parent's memory at
# the fork (Linux records the old address space's peak at exec), so the measured command is
# started from this small launcher, not from the benchmark that holds a model.
_LAUNCHER = ('import os, subprocess, sys\n'
             'child = subprocess.Popen(sys.argv[1:])\n'
             '_, status, usage = os.wait4(child.pid, 0)\n'
             'print(f"peak_kib {usage.ru_maxrss}", flush=True)\n'
             'sys.exit(1 if status else 0)\n')


def run_child(command: List[str], log: str) -> Dict[str, object]:
    """Wall seconds, peak resident MiB and output of ``command`` run as a child process."""
    start = time.perf_counter()
    with open(log, 'w') as out:
        status = subprocess.call([sys.executable, '-c', _LAUNCHER, *command], stdout=out,
                                 stderr=subprocess.STDOUT, cwd=cli.REPO_ROOT)
    seconds = time.perf_counter() - start
    with open(log) as f:
        text = f.read()
    if status:
        raise RuntimeError(f'{" ".join(command)} failed:\n{text[-2000:]}')
    peak = int(re.findall(r'^peak_kib (\d+)$', text, re.M)[-1])
    return {'seconds': seconds, 'peak_mib': peak / 1024, 'output': text}


def photo(args: argparse.Namespace, model, weights: str, blocks: List[np.ndarray]) -> Dict[str, object]:
    from utils.image_io import write_image

    with tempfile.TemporaryDirectory(prefix='invdn_photo_') as folder:
        path = os.path.join(folder, 'photo_12mp.png')
        image = mosaic(blocks, 6, 8)
        write_image(path, image)
        command = [sys.executable, 'predict.py', '--input', path, '--result_dir', os.path.join(folder, 'out')]
        if args.weights:
            command += ['--weights', args.weights]
        result = run_child(command, os.path.join(folder, 'predict.log'))
    chosen = re.search(r'back end: (\S+).*?, (fp32|bf16|fp16)', result.pop('output'))
    name, precision = chosen.group(1), chosen.group(2)
    rate = block_rate(model, weights, name, precision)
    blocks_in_photo = image.shape[0] * image.shape[1] / 256 ** 2
    figures = dict(result, image=list(image.shape[:2]), backend=f'{name} {precision}',
                   seconds_per_256_block=rate, target_seconds=1.3 * rate * blocks_in_photo)
    print(f'photo: {image.shape[1]} x {image.shape[0]} through predict.py: {result["seconds"]:.1f} s wall, '
          f'peak {result["peak_mib"]:.0f} MiB, {name} {precision}; {name} {precision} on 256 x 256 '
          f'blocks: {rate:.3f} s each, target 1.3 x {rate:.3f} x {blocks_in_photo:.0f} = '
          f'{figures["target_seconds"]:.1f} s', flush=True)
    return figures


SIZES = ((256, 256), (512, 512), (768, 768), (1024, 1024), (1516, 1356))


def sizes(model, weights: str) -> List[Dict[str, object]]:
    from deploy.cache import exported_model
    from deploy.openvino_runtime import PRECISION_HINTS, openvino_bf16_supported
    from deploy.runtimes import installed

    if not installed('openvino'):
        print('sizes: skipped, OpenVINO is not installed')
        return []
    import openvino

    onnx_file = os.path.join(exported_model(model, weights, 'onnx', False, say=None), 'model.onnx')
    core = openvino.Core()
    rows = []
    for precision in ('bf16', 'fp32') if openvino_bf16_supported() else ('fp32',):
        config = {'INFERENCE_PRECISION_HINT': PRECISION_HINTS[precision], 'PERFORMANCE_HINT': 'LATENCY'}
        any_size = core.compile_model(core.read_model(onnx_file), 'CPU', config).create_infer_request()
        for height, width in SIZES:
            rng = np.random.default_rng(0)
            feed = {'noisy': rng.random((1, 3, height, width), dtype=np.float32),
                    'z': rng.standard_normal((1, 45, height // 4, width // 4), dtype=np.float32)}
            sized_model = core.read_model(onnx_file)
            sized_model.reshape({name: array.shape for name, array in feed.items()})
            start = time.perf_counter()
            sized = core.compile_model(sized_model, 'CPU', config).create_infer_request()
            compile_seconds = time.perf_counter() - start
            blocks = height * width / 256 ** 2
            row = {'precision': precision, 'size': [height, width], 'compile_s': compile_seconds}
            for name, request in (('any_size', any_size), ('sized', sized)):
                request.infer(feed)
                times = []
                for _ in range(max(2, round(6 / blocks))):
                    start = time.perf_counter()
                    request.infer(feed)
                    times.append(time.perf_counter() - start)
                row[f'{name}_s_per_256_block'] = float(np.median(times)) / blocks
            del sized
            rows.append(row)
            print(f'sizes: openvino {precision} {width} x {height}: {row["any_size_s_per_256_block"]:.3f} s per '
                  f'256 x 256 compiled for any size, {row["sized_s_per_256_block"]:.3f} s for this size '
                  f'(compiling for it: {compile_seconds:.2f} s)', flush=True)
    return rows


def memory_child(model, weights: str, name: str, precision: str, side: int) -> None:
    """The child of the memory row: one line of JSON."""
    import resource

    from core.denoise import DenoiseOptions, denoise_array

    backend = open_backend(model, weights, name, precision)
    small = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    denoise_array(backend, small, DenoiseOptions(seed=0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    denoise_array(backend, image, DenoiseOptions(seed=0))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({'bytes_per_pixel': (after - before) / side ** 2, 'base_mib': before / 2 ** 20}))


def memory(args: argparse.Namespace) -> List[Dict[str, object]]:
    from deploy.openvino_runtime import openvino_bf16_supported
    from deploy.runtimes import installed

    rows = []
    for name, precision in MEMORY_BACKENDS:
        if not installed(name) or (precision == 'bf16' and not openvino_bf16_supported()):
            continue
        for side in (512, 1024):
            command = [sys.executable, '-m', 'benchmarks.photos', '--memory_child', name, precision, str(side)]
            if args.weights:
                command += ['--weights', args.weights]
            with tempfile.TemporaryDirectory() as folder:
                result = run_child(command, os.path.join(folder, 'log'))
            figures = json.loads(re.findall(r'^\{.*\}$', result['output'], re.M)[-1])
            rows.append(dict(figures, backend=name, precision=precision, side=side))
            print(f'memory: {name} {precision}, {side} x {side}: {figures["bytes_per_pixel"]:.0f} bytes per pixel '
                  f'(model loaded: {figures["base_mib"]:.0f} MiB)', flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from benchmarks.bench_cpu import machine_info
    from networks.loading import load_network

    weights = cli.find_weights(args.weights)[0]
    model = load_network(weights)
    if args.memory_child:
        name, precision, side = args.memory_child
        memory_child(model, weights, name, precision, int(side))
        return {}
    figures: Dict[str, object] = dict(machine_info(), weights=weights)
    print(f'{figures["date"]}  {figures["cpu"]}, {figures["cores"]} cores; weights {weights}', flush=True)
    blocks = noisy_blocks(args.sidd_dir)
    if 'seams' in args.rows:
        figures['seams'] = seams(args, model, weights, blocks)
    if 'photo' in args.rows:
        figures['photo'] = photo(args, model, weights, blocks)
    if 'sizes' in args.rows:
        figures['sizes'] = sizes(model, weights)
    if 'memory' in args.rows:
        figures['memory'] = memory(args)
    write_json(args.json, figures)
    return figures


if __name__ == '__main__':
    main()
