"""Open a notebook in JupyterLab in headless Chromium, run it, and save a screenshot.

Shows that the widgets render as widgets (sliders, buttons, images), not as their text
fallback. Needs Debian's ``chromium`` (``sudo apt-get install chromium``) and the Python
package ``playwright`` (``pip install -e '.[browser]'``; no browser download: it drives the
system Chromium). JupyterLab runs on 127.0.0.1 with a temporary configuration.

Also checks the Voila app (the explorer served without code) and ``pbm report`` files.

Run:  .venv/bin/python scripts/browser_check.py lab notebooks/00_explore.ipynb explorer.png
      .venv/bin/python scripts/browser_check.py voila notebooks/00_explore.ipynb app.png
      .venv/bin/python scripts/browser_check.py report papermill_runs/default/report.html report.png
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]


def find_chromium() -> str | None:
    """Path of a system Chromium, or None."""
    return next((c for c in CHROMIUM_CANDIDATES if Path(c).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("JupyterLab exited before it answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout} s")


@contextmanager
def _server(command: list[str], env: dict):
    """A Jupyter server (JupyterLab or Voila) in its own process group, stopped on exit."""
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        yield server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def _jupyter_env(work: Path) -> dict:
    """Configuration, runtime and IPython folders of their own: nothing of the user's setup is read or written."""
    return {**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
            "IPYTHONDIR": str(work / "ipython"), "MPLBACKEND": "Agg"}


def browser_check(notebook: str | os.PathLike, screenshot: str | os.PathLike, *, timeout: float = 240.0,
                  press_last_run: bool = True) -> dict:
    """Run ``notebook`` in JupyterLab in headless Chromium and screenshot the result.

    With ``press_last_run``, the last button labelled "Run" is clicked afterwards and a
    second widget image is awaited (in ``00_explore``: the quick-sweep panel's plot).

    Returns
    -------
    dict
        ``sliders``, ``buttons``, ``images`` (widget elements found on the page),
        ``text_fallback`` (True if a widget's plain-text form such as ``VBox(children=``
        was shown instead) and ``screenshot`` (the path written).
    """
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found; install it with 'sudo apt-get install chromium'")
    notebook, screenshot = Path(notebook).resolve(), Path(screenshot).resolve()
    work = Path(tempfile.mkdtemp(prefix="pbm-browser-"))
    root = work / "root"
    root.mkdir()
    shutil.copy(notebook, root / notebook.name)
    port, token = _free_port(), secrets.token_hex(16)
    command = ([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else []))
    try:
        with _server(command, _jupyter_env(work)) as server:
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(f"{base}/api/status?token={token}", server, 60)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1300, "height": 1700})
                page.goto(f"{base}/lab/tree/{notebook.name}?token={token}", timeout=timeout * 1000)
                page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=timeout * 1000)
                page.wait_for_selector(".jp-Notebook", timeout=timeout * 1000)
                page.wait_for_function(
                    "() => { const w = window.jupyterapp.shell.currentWidget;"
                    " return w && w.sessionContext && w.sessionContext.session"
                    " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }",
                    timeout=timeout * 1000)
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_selector(".widget-slider", timeout=timeout * 1000)
                page.wait_for_function(
                    "() => Array.from(document.querySelectorAll('img.widget-image'))"
                    ".filter(i => i.complete && i.naturalWidth > 0).length >= 1", timeout=timeout * 1000)
                page.wait_for_function(  # every cell finished
                    "() => !Array.from(document.querySelectorAll('.jp-InputArea-prompt'))"
                    ".some(p => p.textContent.includes('*'))", timeout=timeout * 1000)
                if press_last_run:  # press the last Run button (the quick-sweep panel) like a user
                    page.locator("button.jupyter-button", has_text="Run").last.click()
                    page.wait_for_function(
                        "() => Array.from(document.querySelectorAll('img.widget-image'))"
                        ".filter(i => i.complete && i.naturalWidth > 0).length >= 2", timeout=timeout * 1000)
                try:  # JupyterLab's question about news; it may re-render, so best effort only
                    page.get_by_role("button", name="No", exact=True).last.click(timeout=3000)
                except Exception:  # noqa: BLE001 - a toast that went away is fine
                    pass
                time.sleep(1.0)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
                found = {
                    "sliders": page.locator(".widget-slider").count(),
                    "buttons": page.locator("button.jupyter-button").count(),
                    "images": page.locator("img.widget-image").count(),
                    "loaded_images": page.evaluate("Array.from(document.querySelectorAll('img.widget-image'))"
                                                   ".filter(i => i.complete && i.naturalWidth > 0).length"),
                    "text_fallback": "VBox(children=" in page.inner_text("body"),
                    "screenshot": str(screenshot),
                }
                browser.close()
            return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _browser(pw):
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found; install it with 'sudo apt-get install chromium'")
    return pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)


def report_check(report: str | os.PathLike, screenshot: str | os.PathLike, *, timeout: float = 60.0) -> dict:
    """Open a ``pbm report`` HTML file in headless Chromium: count its images and the broken ones.

    Returns
    -------
    dict
        ``images``, ``broken_images`` (not loaded or zero width), ``external_images``
        (sources that are not embedded ``data:`` URIs), ``code_cells_shown`` and ``screenshot``.
    """
    from playwright.sync_api import sync_playwright

    report, screenshot = Path(report).resolve(), Path(screenshot).resolve()
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto(report.as_uri(), timeout=timeout * 1000)
        page.wait_for_load_state("load")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
        found = {
            "images": page.locator("img").count(),
            "broken_images": page.evaluate("Array.from(document.images)"
                                           ".filter(i => !i.complete || i.naturalWidth === 0).length"),
            "external_images": page.evaluate("Array.from(document.images)"
                                             ".filter(i => !i.src.startsWith('data:')).length"),
            "code_cells_shown": page.locator(".jp-CodeCell .jp-InputArea").count(),
            "screenshot": str(screenshot),
        }
        browser.close()
    return found


def voila_check(notebook: str | os.PathLike, screenshot: str | os.PathLike, *, timeout: float = 240.0) -> dict:
    """Serve ``notebook`` as a Voila app on 127.0.0.1, move a slider and press the last Run button
    in headless Chromium, and screenshot the page.

    Returns
    -------
    dict
        ``sliders``, ``buttons``, ``loaded_images`` (before and after pressing Run),
        ``code_shown`` (any code cell on the page), ``status_after_slider`` (the explorer's
        numbers after moving the first slider) and ``screenshot``.
    """
    from playwright.sync_api import sync_playwright

    notebook, screenshot = Path(notebook).resolve(), Path(screenshot).resolve()
    work = Path(tempfile.mkdtemp(prefix="pbm-voila-"))
    port = _free_port()
    command = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"]
    loaded = ("() => Array.from(document.querySelectorAll('img.widget-image'))"
              ".filter(i => i.complete && i.naturalWidth > 0).length")
    try:
        with _server(command, _jupyter_env(work)) as server:
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(base, server, 90)
            with sync_playwright() as pw:
                browser = _browser(pw)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(base, timeout=timeout * 1000)
                page.wait_for_selector(".widget-slider", timeout=timeout * 1000)
                page.wait_for_function(f"({loaded})() >= 1", timeout=timeout * 1000)
                status = page.locator(".widget-html").first
                before = status.inner_text()
                handle = page.locator(".widget-slider .noUi-handle").first  # N_s donors
                handle.focus()
                page.keyboard.press("ArrowLeft")
                page.keyboard.press("ArrowLeft")
                page.wait_for_function("(b) => { const s = document.querySelector('.widget-html');"
                                       " return s && s.innerText !== b && !s.innerText.includes('mixing...'); }",
                                       arg=before, timeout=timeout * 1000)
                after_slider = status.inner_text()
                images_before = page.evaluate(loaded)
                page.locator("button.jupyter-button", has_text="Run").last.click()
                page.wait_for_function(f"({loaded})() >= {images_before + 1}", timeout=timeout * 1000)
                time.sleep(1.0)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.set_viewport_size({"width": 1440, "height": 1500})  # the whole app, top to bottom
                page.evaluate("window.scrollTo(0, 0); document.querySelectorAll('*').forEach(e => e.scrollTop = 0)")
                time.sleep(0.5)
                page.screenshot(path=str(screenshot))
                found = {
                    "sliders": page.locator(".widget-slider").count(),
                    "buttons": page.locator("button.jupyter-button").count(),
                    "loaded_images": [images_before, page.evaluate(loaded)],
                    "code_shown": page.locator(".jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor, pre code").count(),
                    "status_after_slider": after_slider,
                    "screenshot": str(screenshot),
                }
                browser.close()
            return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["lab", "voila", "report"], help="JupyterLab, the Voila app or a report")
    parser.add_argument("path", help="the notebook (lab, voila) or the report's HTML file")
    parser.add_argument("screenshot", help="where the screenshot goes (PNG)")
    args = parser.parse_args()
    check = {"lab": browser_check, "voila": voila_check, "report": report_check}[args.what]
    print(check(args.path, args.screenshot))


if __name__ == "__main__":
    main()
