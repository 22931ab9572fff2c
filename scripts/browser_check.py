"""Real-browser checks in headless Chromium: JupyterLab, the Voila app and ``pbm report`` files.

- ``lab``: a clean copy of the checkout is opened in JupyterLab, the notebook run and saved;
  the widgets must render as widgets (not their text fallback), no control may be cut off,
  and ``git status`` must stay clean.
- ``voila``: the explorer served as ``pbm app`` serves it: a slider moved, the quick sweep
  run, the page's title and controls read.
- ``report``: the file opened with the network off: every request for something outside it
  is refused and recorded, images counted.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the Python package
``playwright`` (``.venv/bin/python -m pip install -e '.[browser]'``; no browser download: it
drives the system Chromium). Servers run on 127.0.0.1 with a temporary configuration.

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


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=pbm", "-c", "user.email=pbm@localhost", *args], cwd=folder,
                          check=True, capture_output=True, text=True).stdout


def clean_copy(checkout: str | os.PathLike, target: Path) -> Path:
    """A fresh git repository at ``target`` holding the files of ``checkout`` that git would commit
    (tracked and new, ignored ones left out, as they are in the working tree), committed once:
    a clean clone of what is there now."""
    checkout = Path(checkout).resolve()
    listed = _git(checkout, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = checkout / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "the checkout as it is")
    return target


# Elements whose content is cut: a control wider than the output area, or a button or field whose
# text does not fit in it (the Run button that showed "▶ ...").
_CLIPPED = """() => {
  const found = [];
  for (const e of document.querySelectorAll(
      '.widget-slider, .widget-dropdown, .widget-text, .widget-hbox, button.jupyter-button, .widget-label')) {
    const box = e.getBoundingClientRect();
    if (box.width === 0) continue;
    const area = e.closest('.jp-OutputArea-output, .jp-OutputArea, #rendered_cells, body');
    const limit = area ? area.getBoundingClientRect().right : window.innerWidth;
    const text = (e.innerText || e.textContent || '').trim().slice(0, 40);
    if (box.right > limit + 1) found.push(`${e.className.split(' ')[0]} '${text}' ends past its area`);
    if (e.matches('button, .widget-label') && e.scrollWidth > e.clientWidth + 1)
      found.push(`${e.className.split(' ')[0]} '${text}' is cut`);
  }
  return found;
}"""

_LOADED = ("() => Array.from(document.querySelectorAll('img.widget-image'))"
           ".filter(i => i.complete && i.naturalWidth > 0).length")


def browser_check(notebook: str | os.PathLike, screenshot: str | os.PathLike, *, timeout: float = 240.0,
                  press_last_run: bool = True, width: int = 1100) -> dict:
    """Run ``notebook`` in JupyterLab in headless Chromium, save it, and check the checkout stays clean.

    ``notebook`` lies in a git checkout (``notebooks/00_explore.ipynb``). A clean copy of the
    checkout (:func:`clean_copy`) gets its notebooks' working copies written from their scripts;
    JupyterLab opens the notebook there, runs every cell, presses the last button labelled
    "Run" (in ``00_explore``: the quick sweep), saves, and ``git status`` is read.

    Returns
    -------
    dict
        ``sliders``, ``buttons``, ``images``, ``loaded_images`` (widget elements found),
        ``text_fallback`` (a widget's plain-text form such as ``VBox(children=`` was shown),
        ``clipped`` (controls cut off or past the output area), ``saved_outputs`` (outputs in
        the saved ``.ipynb``: it was saved), ``script_rewritten`` (jupytext wrote the paired
        script on save), ``git_status`` (``git status --porcelain`` after saving: empty when
        the checkout stayed clean) and ``screenshot``.
    """
    import nbformat
    from playwright.sync_api import sync_playwright

    from pbmlib.workbench.notebooks import ensure_notebooks

    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found; install it with 'sudo apt-get install chromium'")
    notebook, screenshot = Path(notebook).resolve(), Path(screenshot).resolve()
    checkout = Path(_git(notebook.parent, "rev-parse", "--show-toplevel").strip())
    relative = notebook.relative_to(checkout)
    work = Path(tempfile.mkdtemp(prefix="pbm-browser-"))
    root = clean_copy(checkout, work / "checkout")
    ensure_notebooks(root / relative.parent)
    script = (root / relative).with_suffix(".py")
    script_stamp = script.stat().st_mtime_ns
    before = _git(root, "status", "--porcelain")
    if before:
        raise RuntimeError(f"the clean copy is not clean before Lab opened it: {before}")
    port, token = _free_port(), secrets.token_hex(16)
    command = ([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else []))
    wait = timeout * 1000
    try:
        with _server(command, _jupyter_env(work)) as server:
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(f"{base}/api/status?token={token}", server, 60)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": width, "height": 1700})
                page.goto(f"{base}/lab/tree/{relative.as_posix()}?token={token}", timeout=wait)
                page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=wait)
                page.wait_for_selector(".jp-Notebook", timeout=wait)
                page.wait_for_function(
                    "() => { const w = window.jupyterapp.shell.currentWidget;"
                    " return w && w.sessionContext && w.sessionContext.session"
                    " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }",
                    timeout=wait)
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_selector(".widget-slider", timeout=wait)
                page.wait_for_function(f"({_LOADED})() >= 1", timeout=wait)
                page.wait_for_function(  # every cell finished
                    "() => !Array.from(document.querySelectorAll('.jp-InputArea-prompt'))"
                    ".some(p => p.textContent.includes('*'))", timeout=wait)
                if press_last_run:  # press the last Run button (the quick-sweep panel) like a user
                    page.locator("button.jupyter-button", has_text="Run").last.click()
                    page.wait_for_function(f"({_LOADED})() >= 2", timeout=wait)
                try:  # JupyterLab's question about news; it may re-render, so best effort only
                    page.get_by_role("button", name="No", exact=True).last.click(timeout=3000)
                except Exception:  # noqa: BLE001 - a toast that went away is fine
                    pass
                page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
                page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                                       " return w && w.context && !w.context.model.dirty; }", timeout=wait)
                time.sleep(1.0)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
                found = {
                    "sliders": page.locator(".widget-slider").count(),
                    "buttons": page.locator("button.jupyter-button").count(),
                    "images": page.locator("img.widget-image").count(),
                    "loaded_images": page.evaluate(_LOADED),
                    "text_fallback": "VBox(children=" in page.inner_text("body"),
                    "clipped": page.evaluate(_CLIPPED),
                }
                browser.close()
        saved = nbformat.read(str(root / relative), as_version=4)
        found.update(saved_outputs=sum(len(c.get("outputs", [])) for c in saved.cells if c.cell_type == "code"),
                     script_rewritten=script.stat().st_mtime_ns != script_stamp,
                     git_status=_git(root, "status", "--porcelain"), screenshot=str(screenshot))
        return found
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _browser(pw):
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found; install it with 'sudo apt-get install chromium'")
    return pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)


def report_check(report: str | os.PathLike, screenshot: str | os.PathLike, *, timeout: float = 60.0,
                 full_page: bool = False) -> dict:
    """Open a ``pbm report`` HTML file in headless Chromium with the network off: count its images,
    the broken ones, and every request for something outside the file.

    Returns
    -------
    dict
        ``images``, ``broken_images`` (not loaded or zero width), ``external_requests`` (URLs
        the page asked for that are not the file itself or a ``data:`` URI; they were
        refused), ``code_cells_shown``, ``title``, ``contents`` (entries of the table of
        contents), ``screenshot``.
    """
    from playwright.sync_api import sync_playwright

    report, screenshot = Path(report).resolve(), Path(screenshot).resolve()
    requested = []

    def refuse_outside(route):
        url = route.request.url
        if url.startswith("data:") or url == report.as_uri():
            route.continue_()
        else:
            requested.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = _browser(pw)
        context = browser.new_context(offline=True, viewport={"width": 1200, "height": 1600})
        context.route("**/*", refuse_outside)
        page = context.new_page()
        page.goto(report.as_uri(), timeout=timeout * 1000)
        page.wait_for_load_state("load")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=full_page)
        found = {
            "images": page.locator("img").count(),
            "broken_images": page.evaluate("Array.from(document.images)"
                                           ".filter(i => !i.complete || i.naturalWidth === 0).length"),
            "external_requests": requested,
            "code_cells_shown": page.locator(".jp-CodeCell .jp-InputArea").count(),
            "title": page.title(),
            "contents": page.locator(".pbm-toc li").all_inner_texts(),
            "screenshot": str(screenshot),
        }
        browser.close()
    return found


def voila_check(notebook: str | os.PathLike, screenshot: str | os.PathLike, *, timeout: float = 240.0,
                width: int = 1440, train: bool = False) -> dict:
    """Serve ``notebook`` as ``pbm app`` does (Voila on 127.0.0.1, kernels capped and culled), move
    a slider and press the last Run button in headless Chromium, and screenshot the page.
    With ``train``, "train small CNN" is ticked first (the README's screenshot; about 30 s more).

    Returns
    -------
    dict
        ``title`` (the page's), ``sliders``, ``buttons``, ``loaded_images`` (before and after
        pressing Run), ``code_shown`` (any code cell on the page), ``status_after_slider``
        (the explorer's numbers after moving the first slider), ``sweep_status`` (the quick
        sweep's line when done), ``clipped`` (controls cut off) and ``screenshot``.
    """
    from playwright.sync_api import sync_playwright

    from pbmlib.workbench.app import voila_command

    notebook, screenshot = Path(notebook).resolve(), Path(screenshot).resolve()
    work = Path(tempfile.mkdtemp(prefix="pbm-voila-"))
    port = _free_port()
    wait = timeout * 1000
    try:
        with _server(voila_command(notebook, port=port), _jupyter_env(work)) as server:
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(base, server, 90)
            with sync_playwright() as pw:
                browser = _browser(pw)
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(base, timeout=wait)
                page.wait_for_selector(".widget-slider", timeout=wait)
                page.wait_for_function(f"({_LOADED})() >= 1", timeout=wait)
                status = page.locator(".pbm-status").first
                before = status.inner_text()
                handle = page.locator(".widget-slider .noUi-handle").first  # N_s donors
                handle.focus()
                page.keyboard.press("ArrowLeft")
                page.keyboard.press("ArrowLeft")
                page.wait_for_function("(b) => { const s = document.querySelector('.pbm-status');"
                                       " return s && s.innerText !== b && !s.innerText.includes('mixing...'); }",
                                       arg=before, timeout=wait)
                after_slider = status.inner_text()
                images_before = page.evaluate(_LOADED)
                if train:
                    page.locator(".widget-checkbox", has_text="train small CNN").locator("input").check()
                page.locator("button.jupyter-button", has_text="Run").last.click()
                page.wait_for_function(f"({_LOADED})() >= {images_before + 1}", timeout=wait)
                page.wait_for_function("() => (document.querySelector('.pbm-sweep-status') || {}).innerText"
                                       "?.startsWith('done')", timeout=wait)
                time.sleep(1.0)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                height = page.evaluate("Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))")
                page.set_viewport_size({"width": width, "height": min(int(height) + 40, 4000)})  # all of the app
                page.evaluate("window.scrollTo(0, 0); document.querySelectorAll('*').forEach(e => e.scrollTop = 0)")
                time.sleep(0.5)
                page.screenshot(path=str(screenshot))
                found = {
                    "title": page.title(),
                    "sliders": page.locator(".widget-slider").count(),
                    "buttons": page.locator("button.jupyter-button").count(),
                    "loaded_images": [images_before, page.evaluate(_LOADED)],
                    "code_shown": page.locator(".jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor, pre code").count(),
                    "status_after_slider": after_slider,
                    "sweep_status": page.locator(".pbm-sweep-status").inner_text(),
                    "clipped": page.evaluate(_CLIPPED),
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
    parser.add_argument("--train", action="store_true", help="voila: tick 'train small CNN' before the sweep")
    args = parser.parse_args()
    if args.what == "voila":
        print(voila_check(args.path, args.screenshot, train=args.train))
    else:
        print({"lab": browser_check, "report": report_check}[args.what](args.path, args.screenshot))


if __name__ == "__main__":
    main()
