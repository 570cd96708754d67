"""Start the app as `make run` does and drive it in Debian's headless Chromium with Playwright."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FAILURES = ROOT / "screenshots" / "failures"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(home: Path):
    """The app's server process and its address, for tests that kill it; it is stopped at the
    end unless it is already gone."""
    port = free_port()
    env = {**os.environ, "RAGTUNE_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://localhost:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the app did not start")
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # a loaded machine (load 15 on 2 cores) took longer
                process.kill()
                process.wait(10)


@contextmanager
def running_app(home: Path):
    with app_server(home) as (_, url):
        yield url


@contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield page
        finally:
            browser.close()


@contextmanager
def screenshot_on_failure(item, page):
    """Save the page as screenshots/failures/<test>.png if the test fails: at once when the
    failure passes through this block (a test's own ``with``, while its app still runs), or at
    teardown when it wraps a fixture's ``yield``.

    Args:
        item: the pytest item (``request.node``); conftest keeps its reports on it.
    """
    def save():
        FAILURES.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.name)
        page.screenshot(path=FAILURES / f"{name}.png", full_page=True)
    try:
        yield
    except BaseException:
        save()
        raise
    report = getattr(item, "rep_call", None)
    if report is not None and report.failed:
        save()


def chromium_missing() -> bool:
    return not (Path(CHROMIUM).exists() or shutil.which("chromium"))


def wait_idle(page, timeout: float = 60_000) -> None:
    """Streamlit shows a 'running' indicator while a script runs; wait until it is gone."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
