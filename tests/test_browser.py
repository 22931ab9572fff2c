"""Real-browser checks in headless Chromium: JupyterLab on a clean copy of the checkout (run, save,
git status) and the teaching app served as `pbm app` serves it."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser_check import browser_check, find_chromium, voila_check  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None,
                       reason="no Chromium: 'apt-get install chromium' enables the real-browser checks "
                              "(.ci/run installs it)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="no playwright: .venv/bin/python -m pip install -e '.[browser]' (.ci/run does it)"),
]


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout: the check reads git status")
def test_running_and_saving_the_explorer_in_jupyterlab_leaves_the_checkout_clean(tmp_path):
    found = browser_check(ROOT / "notebooks" / "00_explore.ipynb", tmp_path / "explorer.png")
    assert found["sliders"] >= 4 and found["buttons"] >= 2
    assert found["loaded_images"] >= 2  # the explorer's grid and, after pressing Run, the sweep plot
    assert not found["text_fallback"] and found["clipped"] == []
    assert found["saved_outputs"] >= 2 and found["script_rewritten"]  # Lab saved both files of the pair ...
    assert found["git_status"] == ""  # ... and git sees no change
    assert (tmp_path / "explorer.png").stat().st_size > 50_000


@pytest.mark.skipif(importlib.util.find_spec("voila") is None,
                    reason="no Voila: .venv/bin/python -m pip install -e '.[app]' (.ci/run does it)")
def test_the_app_explains_itself_moves_a_slider_and_runs_the_sweep_without_code(tmp_path):
    found = voila_check(ROOT / "notebooks" / "00_explore.ipynb", tmp_path / "app.png")
    assert found["title"] == "Pixel Block Mixing explorer"
    assert found["sliders"] >= 4 and found["code_shown"] == 0 and found["clipped"] == []
    assert "N_b = 25" in found["status_after_slider"] and "blocks per image" in found["status_after_slider"]
    assert "log10 P(restore)" in found["status_after_slider"] and "power of ten" in found["status_after_slider"]
    assert found["loaded_images"][1] > found["loaded_images"][0]
    assert found["sweep_status"].startswith("done: 4 values of block size")
