"""Open a notebook in JupyterLab in headless Chromium, run it, and save a screenshot.

Shows that the widgets render as widgets (sliders, buttons, images), not as their text
fallback. Needs Debian's ``chromium`` (``sudo apt-get install chromium``) and the Python
package ``playwright`` (``pip install -e '.[browser]'``; no browser download: it drives the
system Chromium). JupyterLab runs on 127.0.0.1 with a temporary configuration.

Run:  .venv/bin/python scripts/browser_check.py notebooks/00_explore.ipynb explorer.png
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
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
           "IPYTHONDIR": str(work / "ipython"), "MPLBACKEND": "Agg"}
    port, token = _free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
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
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", nargs="?", default="notebooks/00_explore.ipynb")
    parser.add_argument("screenshot", nargs="?", default="papermill_runs/browser/explorer.png")
    args = parser.parse_args()
    print(browser_check(args.notebook, args.screenshot))


if __name__ == "__main__":
    main()
