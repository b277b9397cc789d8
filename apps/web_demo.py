"""The browser demo of app.py: a Gradio page over predict.py's image loop.

A request is one predict.py job: the uploaded photo is denoised by ``denoise_files`` (the
same reading, orientation, bit depth, alpha, tiling, memory limit and non-finite check)
into a folder of its own, with the page's settings as DenoiseOptions, and the back end
chosen as predict.py chooses it for that much work; so a photo and settings give the page
the image predict.py gives. The page shows before/after on a slider and side by side,
PSNR/SSIM when a clean image is given, and offers the result file at full bit depth.
Requests are queued and run one at a time (a CPU denoises one photo at full speed); a bad
or oversized file is a message in the page, and the server goes on serving.
"""
import argparse
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from apps import cli
from apps.images import denoise_files, image_outputs
from apps.models import EXPORT_PAYS_OFF_MEGAPIXELS, backend_precision, open_backend
from core.denoise import Backend, DenoiseOptions
from utils.image_io import (ImageReadError, check_pixel_limit, megapixels, quantize, read_header,
                            read_image, read_photo, to_float)

# Request folders older than this are removed when a new request comes.
KEEP_RESULTS_SECONDS = 3600
EXAMPLE = (os.path.join(cli.REPO_ROOT, cli.DEMO_INPUT, 'sidd_val_0_0.png'),
           os.path.join(cli.REPO_ROOT, cli.DEMO_GT, 'sidd_val_0_0.png'))
TILE_CHOICES = ['auto', '0', '256', '512', '768']


class Denoiser:
    """What the page calls: the loaded model and, per size of job, the back end predict.py
    would open for it (apps.models.open_backend), opened on first use."""

    def __init__(self, args: argparse.Namespace, model: Any, work_dir: str):
        self.args, self.model, self.work_dir = args, model, work_dir
        self.backends: Dict[bool, Backend] = {}

    @staticmethod
    def small(work_megapixels: float) -> bool:
        """Whether predict.py's back-end rule counts that much work as small (dygraph)."""
        return work_megapixels < EXPORT_PAYS_OFF_MEGAPIXELS

    def ready(self, work_megapixels: float) -> bool:
        """Whether the back end for that much work is open already."""
        return self.small(work_megapixels) in self.backends

    def backend(self, work_megapixels: float) -> Backend:
        small = self.small(work_megapixels)
        if small not in self.backends:
            self.backends[small] = open_backend(self.args.backend, self.model, self.args.weights,
                                                self.args.precision, work_megapixels)
        return self.backends[small]

    def options(self, mc_samples: float, self_ensemble: bool, seed: Optional[float], tile: str) -> DenoiseOptions:
        """The page's settings as DenoiseOptions; ValueError names the one that cannot work."""
        if seed is None or float(seed) != int(seed) or seed < 0:
            raise ValueError(f'seed must be a whole number >= 0, got {seed}')
        try:
            tile_size = cli.parse_tile(str(tile).strip())
        except argparse.ArgumentTypeError as err:
            raise ValueError(f'tile: {err}') from None
        options = DenoiseOptions(mc_samples=int(mc_samples), self_ensemble=bool(self_ensemble),
                                 seed=int(seed), tile=tile_size, tile_overlap=self.args.tile_overlap,
                                 max_memory=int(self.args.max_memory * 2 ** 30))
        options.check(self.model.size_multiple)
        return options

    def denoise(self, noisy_path: str, clean_path: Optional[str], options: DenoiseOptions,
                say: Callable[[str], None] = lambda what: None) -> Tuple[np.ndarray, np.ndarray, str, str]:
        """(noisy 8-bit, denoised 8-bit, result file, what to say) for one upload; ValueError
        with the reason when the photo cannot be denoised. ``say`` hears what is being done."""
        limit = cli.max_pixels(self.args)
        try:
            header = read_header(noisy_path)
            check_pixel_limit(noisy_path, header, limit)
        except ImageReadError as err:
            raise ValueError(str(err)) from None
        variants = 8 if options.self_ensemble else 1
        work = header.pixels / 1e6 * variants * options.mc_samples
        if not self.ready(work) and not self.small(work):
            say('preparing the fast back end (once; the first time for these weights, exporting them)')
        backend = self.backend(work)
        say('denoising')
        self._remove_old_results()
        result_dir = tempfile.mkdtemp(prefix='request-', dir=self.work_dir)
        report = denoise_files(backend, [noisy_path], result_dir, options, gt_dir=clean_path,
                               max_pixels=limit)
        result = image_outputs(noisy_path, result_dir, 'lossless', False)[0]
        if not report.written:
            raise ValueError('; '.join(report.failures) or 'the photo could not be denoised')
        name = os.path.basename(noisy_path)
        said = [f'{megapixels(header.pixels)}, back end {backend.name} {backend_precision(backend)}']
        if name in report.scores:
            psnr, ssim = report.scores[name]
            said.insert(0, f'**PSNR {psnr:.2f} dB, SSIM {ssim:.4f}** against the clean image')
        said += [f'clean image not used: {failure.split(": ", 1)[1]}' for failure in report.failures]
        noisy = quantize(to_float(read_photo(noisy_path, limit).pixels), 8)
        return noisy, quantize(read_image(result, limit), 8), result, '; '.join(said)

    def _remove_old_results(self) -> None:
        now = time.time()
        for entry in os.scandir(self.work_dir):
            if entry.is_dir() and now - entry.stat().st_mtime > KEEP_RESULTS_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)


def is_example_clean(path: Optional[str]) -> bool:
    """Whether ``path`` (an upload) holds the shipped example's clean image."""
    if not path or os.path.getsize(path) != os.path.getsize(EXAMPLE[1]):
        return False
    with open(path, 'rb') as upload, open(EXAMPLE[1], 'rb') as example:
        return upload.read() == example.read()


def build_page(denoiser: Denoiser, weights_line: str, default_tile: str) -> Any:
    """The Gradio Blocks of the demo."""
    import gradio as gr

    def refusal(message: str) -> Exception:
        """A message in the page; the input's fault, so no traceback on the server's console."""
        return gr.Error(message, print_exception=False)

    def run(noisy_file: Optional[str], clean_file: Optional[str], mc_samples: float,
            self_ensemble: bool, seed: Optional[float], tile: str,
            progress: Any = gr.Progress(track_tqdm=True)) -> Tuple[Any, ...]:
        if not noisy_file:
            raise refusal('Upload a noisy photo first, or pick the example below it.')
        uploads = [path for path in (noisy_file, clean_file) if path]

        def readable(message: str) -> str:  # Gradio's cache paths: the names only
            for upload in uploads:
                message = message.replace(upload, os.path.basename(upload))
            return message

        try:
            options = denoiser.options(mc_samples, self_ensemble, seed, tile)
            noisy, denoised, result, said = denoiser.denoise(
                noisy_file, clean_file or None, options, say=lambda what: progress(0, desc=what))
        except ValueError as err:
            message = readable(str(err))
            name = os.path.basename(noisy_file)
            raise refusal(message if name in message else f'{name}: {message}') from None
        return (noisy, denoised), noisy, denoised, readable(said), gr.DownloadButton(value=result, visible=True)

    def cleared() -> Tuple[Any, ...]:
        """Outputs emptied before a request, so that a failed one leaves no earlier result."""
        return None, None, None, '', gr.DownloadButton(value=None, visible=False)

    # Uploads and shown images older than an hour are dropped while the server runs.
    with gr.Blocks(title='InvDN denoising', analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown('# InvDN: denoise a photo\n'
                    'Invertible Denoising Network (Liu et al., CVPR 2021), reproduced in PaddlePaddle. '
                    f'{weights_line}')
        with gr.Row():
            with gr.Column(scale=1):
                noisy_file = gr.File(label='Noisy photo (PNG, JPEG, TIFF, BMP, WebP; 8 or 16 bit)',
                                     file_types=['image'],
                                     elem_id='noisy-file')
                clean_file = gr.File(label='Clean image of the same scene (optional: PSNR/SSIM)',
                                     file_types=['image'], elem_id='clean-file')
                gr.Examples([list(EXAMPLE)], inputs=[noisy_file, clean_file], example_labels=[
                    'SIDD validation block, with its clean image'], label='Example')
                with gr.Accordion('Settings (as predict.py)', open=False):
                    mc_samples = gr.Slider(1, 16, value=1, step=1, label='Monte-Carlo samples (--mc_samples)')
                    self_ensemble = gr.Checkbox(value=False, label='Self-ensemble of 8 flips (--self_ensemble)')
                    seed = gr.Number(value=0, precision=0, label='Seed (--seed)')
                    tile = gr.Dropdown(TILE_CHOICES, value=default_tile, allow_custom_value=True,
                                       label='Tile (--tile: auto, 0 for the whole image, or pixels)')
                button = gr.Button('Denoise', variant='primary', elem_id='denoise-button')
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label='Before / after (drag)', type='numpy', format='png',
                                        elem_id='before-after')
                said = gr.Markdown(elem_id='result-info')
                download = gr.DownloadButton('Download the result (full bit depth)', visible=False,
                                             elem_id='download')
                with gr.Row():
                    before = gr.Image(label='Noisy', type='numpy', format='png', interactive=False)
                    after = gr.Image(label='Denoised', type='numpy', format='png', interactive=False)
        outputs = [slider, before, after, said, download]
        # The example's clean image does not belong to a photo uploaded after it.
        noisy_file.upload(lambda clean: None if is_example_clean(clean) else gr.skip(),
                          inputs=clean_file, outputs=clean_file, queue=False)
        button.click(cleared, outputs=outputs, queue=False).then(
            run, inputs=[noisy_file, clean_file, mc_samples, self_ensemble, seed, tile], outputs=outputs,
            concurrency_limit=1)
    return page
