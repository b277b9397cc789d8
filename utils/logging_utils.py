"""Training logs: text loggers, optional VisualDL scalars, and a curves plot.

Console output goes through ``tqdm.write`` so log lines do not break the progress
bar. VisualDL and matplotlib are imported only when used.
"""
import logging
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from utils.durable import atomic_path, disk_full_error

LOG_FORMAT = '%(asctime)s %(levelname)s: %(message)s'
DATE_FORMAT = '%y-%m-%d %H:%M:%S'


class TqdmHandler(logging.Handler):
    """Console handler that prints above an active tqdm bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except Exception:  # logging must never crash training
            self.handleError(record)


class LogFileHandler(logging.FileHandler):
    """A log file whose full disk stops the run with ``DiskFullError`` naming the file
    (``logging`` would print a traceback per line and go on without a log)."""

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            full = disk_full_error(self.baseFilename, err)
            if full is not err:
                raise full from None
        super().handleError(record)


def setup_logger(name: str, log_file: Optional[str] = None, screen: bool = True,
                 level: int = logging.INFO) -> logging.Logger:
    """A logger writing to ``log_file`` (appending, so resumed runs continue it) and the console.

    Handlers from an earlier call with the same name are closed and replaced.
    """
    logger = logging.getLogger(name)
    close_logger(logger)
    logger.setLevel(level)
    logger.propagate = False
    formatter = logging.Formatter(LOG_FORMAT, datefmt=DATE_FORMAT)
    handlers: List[logging.Handler] = []
    if log_file is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(LogFileHandler(log_file, mode='a', encoding='utf-8'))
    if screen:
        handlers.append(TqdmHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def close_logger(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        try:
            handler.close()
        except OSError:  # a full disk, already reported by the failed log line
            pass
        logger.removeHandler(handler)


class ScalarWriter:
    """VisualDL scalars under ``log_dir`` when visualdl is installed; otherwise does nothing."""

    def __init__(self, log_dir: str):
        try:
            from visualdl import LogWriter
        except ImportError:
            self._writer = None
        else:
            self._writer = LogWriter(logdir=log_dir)

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def add_scalars(self, scalars: Dict[str, float], step: int) -> None:
        if self._writer is not None:
            for tag, value in scalars.items():
                self._writer.add_scalar(tag=tag, value=value, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


Curve = Sequence[Tuple[int, float]]


def plot_training_curves(path: str, losses: Dict[str, Curve], val_psnr: Curve,
                         val_psnr_raw: Optional[Curve] = None) -> None:
    """Write a PNG: loss terms (log scale) and validation PSNR against iteration; with weight
    averaging, ``val_psnr`` is the averaged weights' and ``val_psnr_raw`` the trained ones'.

    Uses matplotlib's object API with the Agg canvas (no display, no global pyplot
    state), and replaces the file atomically so a viewer never sees half an image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, psnr_axes = figure.subplots(1, 2)
    for term, curve in losses.items():
        if curve:
            iters, values = zip(*curve)
            loss_axes.plot(iters, values, label=term, linewidth=1)
    loss_axes.set(xlabel='iteration', ylabel='training loss', title='Training losses')
    if any(value > 0 for curve in losses.values() for _, value in curve):
        loss_axes.set_yscale('log')
    if any(losses.values()):
        loss_axes.legend(fontsize='small')
    if val_psnr:
        iters, values = zip(*val_psnr)
        psnr_axes.plot(iters, values, marker='o', markersize=3, linewidth=1,
                       label='averaged weights (the model)' if val_psnr_raw else None)
    if val_psnr_raw:
        iters, values = zip(*val_psnr_raw)
        psnr_axes.plot(iters, values, marker='o', markersize=3, linewidth=1, alpha=0.7,
                       label='trained weights, not averaged')
        psnr_axes.legend(fontsize='small')
    psnr_axes.set(xlabel='iteration', ylabel='PSNR (dB)', title='Validation PSNR')
    for axes in (loss_axes, psnr_axes):
        axes.grid(True, alpha=0.3)
    figure.tight_layout()

    with atomic_path(path) as tmp_path:
        figure.savefig(tmp_path, format='png')
