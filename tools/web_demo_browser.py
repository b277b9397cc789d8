"""Drive the web demo (app.py) in a real browser: start it, upload a photo, wait for the
result, download it and take a screenshot. Used by tests/test_web_demo.py, and for the
README's screenshot:

    python -m tools.web_demo_browser --screenshot docs/web_demo.png

The browser is Debian's Chromium (apt-get install chromium), driven by Playwright
(requirements-test.txt); Playwright's own browser downloads are not used.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM_NAMES = ('chromium', 'chromium-browser')
START_SECONDS = 180
DENOISE_SECONDS = 300


def chromium_path() -> Optional[str]:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def missing() -> Optional[str]:
    """Why the browser check cannot run here, or None when it can."""
    for module, how in (('gradio', 'pip install -r requirements-demo.txt'),
                        ('playwright', 'pip install -r requirements-test.txt')):
        try:
            __import__(module)
        except ImportError:
            return f'{module} is not installed ({how})'
    if chromium_path() is None:
        return 'no Chromium on this machine (apt-get install chromium)'
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class DemoServer:
    """``python app.py`` on a free port, for a ``with`` block; its output goes to ``log``."""

    def __init__(self, args: List[str], log: str):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}/'
        self.log_path = log
        self.args = [sys.executable, os.path.join(REPO, 'app.py'), '--port', str(self.port)] + args

    def __enter__(self) -> 'DemoServer':
        self.log = open(self.log_path, 'w')
        self.process = subprocess.Popen(self.args, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + START_SECONDS
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'app.py ended with status {self.process.returncode}:\n{self.output()}')
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f'app.py did not answer within {START_SECONDS} s:\n{self.output()}')

    def output(self) -> str:
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@dataclass
class PageResult:
    result_file: Optional[str]  # the downloaded result
    info: str  # the text under the slider
    error: str  # the page's error message, if any
    # After ``then_settings``: that request's error, and whether the earlier result could
    # still be downloaded.
    then_error: str = ''
    stale_download: Optional[bool] = None


def _wait(page: object, download: object, error: object) -> None:
    deadline = time.time() + DENOISE_SECONDS
    while time.time() < deadline and not download.is_visible() and not error.count():
        page.wait_for_timeout(250)


def denoise_in_browser(url: str, noisy: str, clean: Optional[str], download_dir: str,
                       screenshot: Optional[str] = None, then_settings: Optional[dict] = None) -> PageResult:
    """Open the page, upload ``noisy`` (and ``clean``), press Denoise, wait for the result or an
    error, download the result into ``download_dir`` and save a ``screenshot``. With
    ``then_settings`` ({field label: value}), set them afterwards and press Denoise again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=['--no-sandbox'])
        try:
            page = browser.new_page(viewport={'width': 1280, 'height': 900}, accept_downloads=True)
            page.goto(url)
            page.locator('#noisy-file input[type=file]').set_input_files(noisy)
            try:  # a refused upload (too large) never shows its name
                page.locator('#noisy-file').get_by_text(os.path.basename(noisy)).first.wait_for(timeout=4000)
            except PlaywrightTimeout:
                pass
            page.wait_for_timeout(500)  # the page's reaction to a new photo, before the clean image
            if clean:
                page.locator('#clean-file input[type=file]').set_input_files(clean)
            page.locator('#denoise-button').click()
            download, error = page.locator('#download'), page.locator('.toast-body')
            _wait(page, download, error)
            if error.count():
                text = '\n'.join(error.all_inner_texts())
                if screenshot:
                    page.screenshot(path=screenshot)
                return PageResult(None, '', text)
            if not download.is_visible():
                raise RuntimeError(f'no result within {DENOISE_SECONDS} s')
            page.wait_for_timeout(1000)  # the slider and images finish drawing
            info = page.locator('#result-info').inner_text()
            with page.expect_download() as waiting:
                download.click()
            path = os.path.join(download_dir, waiting.value.suggested_filename)
            waiting.value.save_as(path)
            if screenshot:
                page.screenshot(path=screenshot, full_page=True)
            result = PageResult(path, info, '')
            if then_settings:
                page.get_by_text('Settings (as predict.py)').click()
                for label, value in then_settings.items():
                    page.get_by_label(label).fill(str(value))
                page.locator('#denoise-button').click()
                page.wait_for_timeout(500)
                _wait(page, download, error)
                result.then_error = '\n'.join(error.all_inner_texts())
                result.stale_download = download.is_visible()
            return result
        finally:
            browser.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--screenshot', default='docs/web_demo.png', help='where to save the page')
    parser.add_argument('--noisy', default='docs/demo/Noisy/sidd_val_0_0.png', help='photo to upload')
    parser.add_argument('--clean', default='docs/demo/GT/sidd_val_0_0.png', help='its clean image (or "")')
    parser.add_argument('app_args', nargs='*', help='arguments for app.py (after --)')
    args = parser.parse_args(argv)
    reason = missing()
    if reason:
        sys.exit(f'error: {reason}')
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        with DemoServer(args.app_args, os.path.join(folder, 'app.log')) as server:
            result = denoise_in_browser(server.url, args.noisy, args.clean or None, folder, args.screenshot)
    print(result.error or f'{result.info}\nsaved {args.screenshot}')


if __name__ == '__main__':
    main()
