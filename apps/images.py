"""Denoising image files: the loop of predict.py and infer.py, whatever the back end.

A job is planned before any model is loaded (``plan_image_job``): options, inputs, each
image's declared size against the pixel limit, and the result folder, which the run locks
so that a second run cannot mix its images in, which must not be an input folder, and
whose finished results ``--resume`` skips. Images are then read (8/16-bit PNG, JPEG, TIFF,
BMP, as viewers orient them; alpha kept aside), grouped into batches of equal size,
denoised by the one routine (core.denoise) and written under ``result_dir`` with their
input names, bit depth and alpha; JPEG inputs are written as PNG unless the caller asks to
keep the format, so that a denoised image is not degraded again by compression. With a GT
folder, PSNR/SSIM are computed on 8-bit quantised images, as for SIDD. An unreadable image,
or one whose result is not finite, is reported by name and the others are still processed.
"""
import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from apps import cli
from core.denoise import Backend, DenoiseOptions
from core.evaluate import mean_lines, score
from core.loop import denoise_batches
from utils.durable import DiskFullError, remove_stale_temps, resume_mismatch
from utils.image_io import (DEFAULT_MAX_PIXELS, ImageReadError, Photo, check_pixel_limit, quantize,
                            read_header, read_image, read_photo, to_float, write_image)
from utils.run_lock import LockedError, RunLock

OUTPUT_FORMATS = ('lossless', 'same')
_LOSSY_EXTENSIONS = ('.jpg', '.jpeg')


def result_name(name: str, output_format: str = 'lossless') -> str:
    """File name of a denoised image: the input's, with JPEG turned into PNG when lossless."""
    stem, ext = os.path.splitext(name)
    if output_format == 'lossless' and ext.lower() in _LOSSY_EXTENSIONS:
        return stem + '.png'
    return name


def comparison_path(result_dir: str, name: str) -> str:
    return os.path.join(result_dir, 'comparison', os.path.splitext(name)[0] + '.png')


def comparison(noisy: np.ndarray, denoised: np.ndarray, clean: Optional[np.ndarray]) -> np.ndarray:
    """noisy | denoised | GT side by side (8-bit), each under a caption with its PSNR against
    GT when GT is known."""
    import cv2

    panels = [('noisy', noisy), ('denoised', denoised)] + ([('GT', clean)] if clean is not None else [])
    height, width = noisy.shape[:2]
    caption_height = max(16, width // 12)
    scale = caption_height / 40
    columns = []
    for title, panel in panels:
        if clean is not None and title != 'GT':
            title = f'{title}: PSNR {score(panel, clean)[0]:.2f} dB'
        caption = np.full((caption_height, width, 3), 255, np.uint8)
        cv2.putText(caption, title, (max(2, width // 40), int(caption_height * 0.72)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, round(scale * 2)), cv2.LINE_AA)
        columns.append(np.concatenate([caption, quantize(panel, 8)], axis=0))
    return np.concatenate(columns, axis=1)


def image_outputs(path: str, result_dir: str, output_format: str, save_comparison: bool) -> List[str]:
    """The files ``denoise_files`` writes for the image ``path``: its result, then its
    comparison image when asked for."""
    name = os.path.basename(path)
    result = os.path.join(result_dir, result_name(name, output_format))
    return [result, comparison_path(result_dir, name)] if save_comparison else [result]


def gt_path(gt_dir: Optional[str], name: str) -> Optional[str]:
    """The clean image of ``name``: ``gt_dir/name``, or ``gt_dir`` itself when it is a file."""
    if gt_dir is None:
        return None
    return gt_dir if os.path.isfile(gt_dir) else os.path.join(gt_dir, name)


class StageTimer:
    """Preprocess (read, stack) / inference (denoise) / postprocess (write, score) times per
    batch, reported with the sections and field names of Paddle's auto_log benchmark
    report (Env, Paddle, Conf, Model, Data, Perf info) without depending on auto_log.

    ``conf``: the predictor's settings (runtime_device, ir_optim, enable_tensorrt,
    enable_mkldnn, cpu_math_library_num_threads); ``model``: model_name, precision;
    ``data``: batch_size, input_shape."""

    STAGES = ('preprocess_time', 'inference_time', 'postprocess_time')

    def __init__(self, conf: dict[str, object], model: dict[str, object], data: dict[str, object]):
        self.sections = {'Conf info': conf, 'Model info': model, 'Data info': data}
        self.seconds: Dict[str, List[float]] = {stage: [] for stage in self.STAGES}
        self._stage = 0
        self._last = 0.0

    def start(self) -> None:
        self._stage, self._last = 0, time.perf_counter()

    def restart_stage(self) -> None:
        """Leave the time since the last stamp out of every stage."""
        self._last = time.perf_counter()

    def stamp(self) -> None:
        """End the current stage."""
        now = time.perf_counter()
        self.seconds[self.STAGES[self._stage]].append(now - self._last)
        self._stage, self._last = self._stage + 1, now

    def report(self, num_images: int) -> str:
        if not self.seconds['inference_time']:
            return 'benchmark: no image was denoised'
        import platform

        import paddle

        def header(title: str) -> str:
            return f'{"-" * 23} {title} {"-" * 23}'

        env = {'OS_version': platform.platform(),
               'CUDA_version': paddle.version.cuda() if paddle.is_compiled_with_cuda() else None,
               'CUDNN_version': paddle.version.cudnn() if paddle.is_compiled_with_cuda() else None}
        lines = [header('Env info')] + [f' {k}: {v}' for k, v in env.items()]
        lines += [header('Paddle info'), f' paddle_version: {paddle.__version__}',
                  f' paddle_commit: {paddle.__git_commit__}']
        data = dict(self.sections['Data info'], data_num=num_images)
        for title, values in (('Conf info', self.sections['Conf info']),
                              ('Model info', self.sections['Model info']), ('Data info', data)):
            lines += [header(title)] + [f' {key}: {value}' for key, value in values.items()]
        total = sum(sum(v) for v in self.seconds.values())
        ms = {stage: round(1000 * float(np.mean(v)), 4) for stage, v in self.seconds.items()}
        lines += [header('Perf info'),
                  f' cpu_rss(MB): {_cpu_rss_mb():.4f}, gpu_rss(MB): None, gpu_util: None%',
                  f' total time spent(s): {total:.4f}',
                  ' ' + ', '.join(f'{stage}(ms): {value}' for stage, value in ms.items())
                  + ' (mean per batch)',
                  f' ips: {num_images / total:.4f} images/s']
        return '\n'.join(lines)


def _cpu_rss_mb() -> float:
    """Peak resident memory of this process in MiB (auto_log samples the current RSS; the
    peak is the figure that sizes a machine)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class FilesReport:
    written: int = 0
    failures: List[str] = field(default_factory=list)  # 'name: why'
    scores: Dict[str, Tuple[float, float]] = field(default_factory=dict)  # name -> (PSNR, SSIM)


def read_files(files: Sequence[str], max_pixels: int, report: FilesReport
          ) -> Iterator[Tuple[str, np.ndarray, Photo, str]]:
    """(name, pixels in the file's integer type, photo, path) of each readable file; the others
    go to ``report.failures``."""
    for path in files:
        name = os.path.basename(path)
        try:
            photo = read_photo(path, max_pixels)
        except ImageReadError as err:
            report.failures.append(f'{name}: {err}')
            continue
        yield name, photo.pixels, photo, path


def like_photo(out: np.ndarray, photo: Photo) -> np.ndarray:
    """A result of the network (RGB) as the photo it came from: grey again for a grey photo,
    not tinted."""
    return np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2) if photo.grey else out


def write_like(path: str, out: np.ndarray, photo: Photo) -> None:
    """Write ``out`` (``like_photo``) in the photo's bit depth, channels and alpha."""
    write_image(path, out[:, :, 0] if photo.grey and photo.alpha is None else out, photo.depth,
                alpha=photo.alpha)


def read_clean(gt_dir: Optional[str], name: str, shape: Tuple[int, ...], max_pixels: int
               ) -> Optional[np.ndarray]:
    """The clean image of ``name`` (``gt_path``), float HWC, or None without a GT folder;
    ImageReadError or ValueError when it cannot be read or is not ``shape``'s size."""
    clean_path = gt_path(gt_dir, name)
    if not clean_path:
        return None
    clean = read_image(clean_path, max_pixels)
    if clean.shape[:2] != tuple(shape[:2]):
        raise ValueError(f'GT {clean_path} is {clean.shape[1]}x{clean.shape[0]}, the noisy image '
                         f'{shape[1]}x{shape[0]}')
    return clean


def denoise_files(backend: Backend, files: Sequence[str], result_dir: str,
                  options: DenoiseOptions = DenoiseOptions(), gt_dir: Optional[str] = None,
                  batch_size: int = 1, save_comparison: bool = False,
                  output_format: str = 'lossless', progress: bool = True,
                  timer: Optional[StageTimer] = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> FilesReport:
    """Denoise ``files`` into ``result_dir``; see the module docstring. Images are held in
    their own integer type and converted tile by tile (core.denoise), so memory follows the
    tile; one whose result is not finite is reported, not written."""
    report = FilesReport()
    bar = tqdm(total=len(files), desc='denoise', unit='img', disable=not progress)
    if timer:
        timer.start()
    for batch in denoise_batches(backend, read_files(files, max_pixels, report), options, batch_size,
                                 clock=timer):
        for (name, _, photo, path), out in batch:
            out = like_photo(out, photo)
            if not np.isfinite(out).all():
                report.failures.append(
                    f'{name}: the denoised image holds NaN or Inf and was not written; the network '
                    f'gave non-finite numbers (weights from a diverged run? --gaussian_scale '
                    f'{options.gaussian_scale}?)')
                continue
            try:
                write_like(os.path.join(result_dir, result_name(name, output_format)), out, photo)
            except DiskFullError as err:  # every later write would fail too: stop here
                report.failures.append(f'{name}: {err}')
                bar.close()
                return report
            report.written += 1
            try:
                clean = read_clean(gt_dir, name, out.shape, max_pixels)
            except (ImageReadError, ValueError) as err:
                report.failures.append(f'{name}: {err}')
                clean = None
            else:
                if clean is not None:
                    report.scores[name] = score(out, clean)
                    # The earlier Paddle reproduction's per-image line, with SSIM added.
                    bar.write(f'image_name: {path}, psnr: {report.scores[name][0]:.4f}, '
                              f'ssim: {report.scores[name][1]:.4f}')
            if save_comparison:
                write_image(comparison_path(result_dir, name), comparison(to_float(photo.pixels), out, clean))
        bar.update(len(batch))
        if timer:
            timer.stamp()
            timer.start()
    bar.update(len(files) - bar.n)
    bar.close()
    return report


@dataclass
class ImageJob:
    """What predict.py/infer.py are to do, checked before any model is loaded (plan_image_job).

    files: the images to denoise now; total: the images --input names; rejected: 'name: why'
    of images refused before decoding (unreadable header, above the pixel limit); skipped:
    images an interrupted run finished (--resume); work_megapixels: the denoising to do
    (megapixels x ensemble variants x Monte-Carlo samples); lock: held on result_dir."""
    files: List[str]
    total: int
    rejected: List[str]
    skipped: List[str]
    options: Any  # DenoiseOptions, or the options of another loop (NoiseOptions)
    max_pixels: int
    work_megapixels: float
    lock: RunLock

    def __enter__(self) -> 'ImageJob':
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release result_dir however the run ends (a process that exits releases it anyway;
        one that goes on, e.g. a test or a server, must)."""
        self.lock.release()


def finish_image_job(report: FilesReport, job: ImageJob, result_dir: str, done: str = 'denoised',
                     score_lines: Callable[[float, float], str] = mean_lines,
                     scored: str = 'image(s)') -> None:
    """Summary of ``denoise_files`` (or another loop over the job: ``done`` says what it did
    to the images, ``score_lines`` prints the mean of the two scores of its ``scored``
    results); exit status 1 (apps.cli.fail) when an image failed."""
    kept = f'; kept {len(job.skipped)} that the earlier run finished (--resume)' if job.skipped else ''
    print(f'{done} {report.written} of {job.total} image(s) into {result_dir}{kept}')
    if report.scores:
        first, second = np.mean(list(report.scores.values()), axis=0)
        print(f'mean over {len(report.scores)} {scored} with GT:\n{score_lines(first, second)}')
    failures = job.rejected + report.failures
    if failures:
        cli.fail(f'{len(failures)} image(s) failed:\n  ' + '\n  '.join(failures))


def _result_dir_refusal(folder: str, owner: str) -> str:
    return (f'{folder} is in use by another run writing results there ({owner}); two runs into '
            'one folder would mix their images. Wait for it to end, or choose another --result_dir')


def _finished(outputs: Sequence[str]) -> bool:
    """Whether every output of an image exists and decodes whole (writes are atomic, so only
    another program can have left one half-written)."""
    for path in outputs:
        try:
            read_photo(path, max_pixels=2 ** 62)
        except ImageReadError:
            return False
    return True


def plan_image_job(args: argparse.Namespace, tool: str, settings: Dict[str, object],
                   demo_input: bool = False, options: Optional[Any] = None,
                   outputs_of: Optional[Callable[[str], List[str]]] = None,
                   draws_per_image: Optional[int] = None) -> ImageJob:
    """The job of predict.py/infer.py (``tool``), after every check that needs no model:
    options; inputs (``--data_path`` resolved; with ``demo_input`` none means the block of
    docs/demo); the GT folder; each image's declared size against --max_megapixels; the
    result folder (not an input folder, writable, locked against a second run, results
    present only with --overwrite or --resume); and, on --resume, that the interrupted run
    had the same ``settings`` (what decides the results besides the flags, e.g. the weights).

    Another loop over images (generate_noise.py) gives its ``options`` (default: the denoise
    flags), the files it writes per input (``outputs_of``, default ``image_outputs``) and
    the network runs per image (``draws_per_image``, default ensemble variants x MC samples)."""
    options = cli.denoise_options(args) if options is None else options
    if outputs_of is None:
        def outputs_of(path: str) -> List[str]:
            return image_outputs(path, args.result_dir, args.output_format, args.save_comparison)
    if draws_per_image is None:
        draws_per_image = (8 if options.self_ensemble else 1) * options.mc_samples
    if getattr(args, 'data_path', None) is not None:
        if args.input is not None or args.gt_dir is not None:
            cli.fail('--data_path DIR stands for --input DIR/Noisy --gt_dir DIR/GT: give one or the other')
        args.input, args.gt_dir = (os.path.join(args.data_path, sub) for sub in ('Noisy', 'GT'))
        if not os.path.isdir(args.data_path):
            cli.fail(f'--data_path: folder not found: {args.data_path}')
        if not (os.path.isdir(args.input) and os.path.isdir(args.gt_dir)):
            cli.fail(f'--data_path: {args.data_path} must hold the folders Noisy/ and GT/ '
                     '(as SIDD_mini/val_mini does)')
    if args.input is None and not demo_input:
        cli.fail('--input is required: a noisy image or a folder of them (or --data_path DIR '
                 'holding Noisy/ and GT/)')
    if args.input is None:
        args.input = os.path.join(cli.REPO_ROOT, cli.DEMO_INPUT)
        args.gt_dir = args.gt_dir or os.path.join(cli.REPO_ROOT, cli.DEMO_GT)
        print(f'input: {cli.DEMO_INPUT} (a SIDD validation block; your images: --input)')
    files = cli.image_files(args.input)
    cli.check_exists(args.gt_dir, '--gt_dir')
    if args.overwrite and args.resume:
        cli.fail('--overwrite redoes every image and --resume keeps the finished ones: give one')
    result_dir = os.path.realpath(args.result_dir)
    for flag, path in (('--input', args.input), ('--gt_dir', args.gt_dir)):
        folder = path if path is None or os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        if folder is not None and os.path.realpath(folder) == result_dir:
            cli.fail(f'--result_dir {args.result_dir} is the {flag} folder: results would replace '
                     'the images they come from; choose another --result_dir')
    outputs = {path: outputs_of(path) for path in files}
    names: Dict[str, str] = {}
    for path, (result, *_) in outputs.items():
        if result in names:
            cli.fail(f'{os.path.basename(names[result])} and {os.path.basename(path)} would both be '
                     f'written as {result}; rename one, or keep each format with --output_format same')
        names[result] = path
    cli.check_writable_dir(args.result_dir, '--result_dir')
    lock = RunLock(args.result_dir, refusal=_result_dir_refusal)
    try:
        lock.acquire()
    except LockedError as err:
        cli.fail(err)
    try:
        return _plan_locked(args, tool, settings, options, files, outputs, lock, draws_per_image)
    except BaseException:
        lock.release()
        raise


def _plan_locked(args: argparse.Namespace, tool: str, settings: Dict[str, object],
                 options: Any, files: List[str], outputs: Dict[str, List[str]],
                 lock: RunLock, draws_per_image: int) -> ImageJob:
    """The rest of ``plan_image_job``, with result_dir locked."""
    for folder in (args.result_dir, os.path.join(args.result_dir, 'comparison')):
        remove_stale_temps(folder)  # left by a killed run; nobody else writes here (the lock)

    existing = [p for paths in outputs.values() for p in paths if os.path.exists(p)]
    if existing and not (args.overwrite or args.resume):
        cli.fail(f'{len(existing)} result file(s) already exist, e.g. {existing[0]}; continue an '
                 'interrupted run with --resume, replace them with --overwrite, or choose another '
                 '--result_dir')
    record = dict(settings, **{key: getattr(args, key) for key in RESULT_FLAGS if hasattr(args, key)})
    mismatch = resume_mismatch(args.result_dir, tool, record, args.resume)
    if mismatch:
        cli.fail(mismatch)
    skipped = {path for path in files if args.resume and _finished(outputs[path])}
    todo = [path for path in files if path not in skipped]

    limit = cli.max_pixels(args)
    readable, rejected, megapixels = [], [], 0.0
    for path in todo:
        try:
            header = read_header(path)
            check_pixel_limit(path, header, limit)
        except ImageReadError as err:
            rejected.append(f'{os.path.basename(path)}: {err}')
        else:
            readable.append(path)
            megapixels += header.pixels / 1e6
    return ImageJob(readable, len(files), rejected, sorted(os.path.basename(p) for p in skipped), options,
                    limit, megapixels * draws_per_image, lock)


# The flags whose values decide the result images (compared on --resume).
RESULT_FLAGS = ('mc_samples', 'self_ensemble', 'gaussian_scale', 'seed', 'tile', 'tile_overlap',
                'max_memory', 'backend', 'precision', 'output_format', 'save_comparison', 'gt_dir',
                'mode', 'epsilon', 'num_samples')
