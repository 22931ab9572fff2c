"""Real-browser check: JupyterLab on 127.0.0.1, the explorer notebook run in headless Chromium."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser_check import browser_check, find_chromium  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None,
                       reason="no Chromium: 'sudo apt-get install chromium' enables the real-browser check"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="no playwright: pip install -e '.[browser]' enables the real-browser check"),
]


def test_explorer_renders_widgets_in_chromium(tmp_path):
    found = browser_check(ROOT / "notebooks" / "00_explore.ipynb", tmp_path / "explorer.png")
    assert found["sliders"] >= 4 and found["buttons"] >= 2
    assert found["loaded_images"] >= 2  # the explorer's grid and, after pressing Run, the sweep plot
    assert not found["text_fallback"]
    assert (tmp_path / "explorer.png").stat().st_size > 50_000


@pytest.mark.skipif(importlib.util.find_spec("voila") is None, reason="no Voila: pip install -e '.[app]'")
def test_voila_app_moves_a_slider_and_runs_the_sweep_without_code(tmp_path):
    from browser_check import voila_check

    found = voila_check(ROOT / "notebooks" / "00_explore.ipynb", tmp_path / "app.png")
    assert found["sliders"] >= 4 and found["code_shown"] == 0
    assert "N_b" in found["status_after_slider"]
    assert found["loaded_images"][1] > found["loaded_images"][0]
