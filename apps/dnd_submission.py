"""A DND sRGB benchmark submission, as the official ``test_Real.DND_test`` and
``DND_submissions_srgb`` write it, through the one denoise routine.

Each box is denoised on its own, clipped to [0, 1] and kept as float32 (not quantised, as
the official ``tensor2img_Real(img, np.float32)``): ``RESULT_DIR/Submit/%04d_%02d.mat`` with
``Idenoised_crop`` (image and box numbered from 1). ``bundle`` then writes
``RESULT_DIR/bundled/%04d.mat`` per image: ``Idenoised`` (a cell array of its boxes), ``israw``
false and ``eval_version`` "1.0", the files to upload. Every file is written under a temporary
name and renamed, so a run stopped midway leaves only complete files, and ``resume``
denoises only the boxes whose file is missing; nothing is ever deleted.
"""
import os
from dataclasses import dataclass, field
from typing import List

import numpy as np
from tqdm import tqdm

from dataloaders.dnd import crop, image_path, read_boxes, read_noisy
from core.denoise import Backend, DenoiseOptions
from core.loop import denoise_batches
from utils.durable import atomic_path
from utils.image_io import DEFAULT_MAX_PIXELS, write_image

SUBMIT_DIR, BUNDLED_DIR, IMAGES_DIR = 'Submit', 'bundled', 'Images'
EVAL_VERSION = '1.0'


def box_file(result_dir: str, image: int, box: int) -> str:
    """``Submit/%04d_%02d.mat`` of 0-based ``image`` and ``box``."""
    return os.path.join(result_dir, SUBMIT_DIR, '%04d_%02d.mat' % (image + 1, box + 1))


def _savemat(path: str, content: dict) -> None:
    import scipy.io

    with atomic_path(path) as tmp_path:
        scipy.io.savemat(tmp_path, content, appendmat=False)


@dataclass
class DndReport:
    images: int = 0
    boxes: int = 0
    denoised: int = 0  # boxes denoised by this run (the others were kept from a resumed one)
    bundled: List[str] = field(default_factory=list)


def denoise_dnd(backend: Backend, dnd_dir: str, result_dir: str,
                options: DenoiseOptions = DenoiseOptions(), save_images: bool = False,
                progress: bool = True, resume: bool = False,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> DndReport:
    """Denoise every box of ``dnd_dir`` into ``result_dir/Submit`` (replacing existing files),
    or with ``resume`` only the boxes without a file there; an image declaring more than
    ``max_pixels`` is refused (dataloaders.dnd.read_noisy)."""
    boxes = read_boxes(dnd_dir)
    report = DndReport(images=len(boxes), boxes=sum(len(b) for b in boxes))
    bar = tqdm(total=report.boxes, desc='DND', unit='box', disable=not progress)
    for image, image_boxes in enumerate(boxes):
        todo = [k for k in range(len(image_boxes))
                if not (resume and os.path.isfile(box_file(result_dir, image, k)))]
        if todo:
            noisy = read_noisy(dnd_dir, image, max_pixels)
            patches = ((k, crop(noisy, image_boxes[k], image_path(dnd_dir, image))) for k in todo)
            for batch in denoise_batches(backend, patches, options):
                for (k, _), restored in batch:
                    denoised = np.clip(restored, 0, 1).astype(np.float32)
                    _savemat(box_file(result_dir, image, k), {'Idenoised_crop': denoised})
                    if save_images:
                        write_image(os.path.join(result_dir, IMAGES_DIR,
                                                 '%04d_%02d.png' % (image + 1, k + 1)), denoised)
                    report.denoised += 1
                    bar.update(1)
        bar.update(len(image_boxes) - len(todo))
    bar.close()
    report.bundled = bundle(result_dir, [len(b) for b in boxes])
    return report


def bundle(result_dir: str, boxes_per_image: List[int]) -> List[str]:
    """``bundled/%04d.mat`` per image from its ``Submit`` files (official ``DND_submissions_srgb``)."""
    import scipy.io

    written = []
    for image, count in enumerate(boxes_per_image):
        cells = np.zeros((count,), dtype=object)
        for k in range(count):
            cells[k] = scipy.io.loadmat(box_file(result_dir, image, k))['Idenoised_crop']
        path = os.path.join(result_dir, BUNDLED_DIR, '%04d.mat' % (image + 1))
        _savemat(path, {'Idenoised': cells, 'israw': False, 'eval_version': EVAL_VERSION})
        written.append(path)
    return written
