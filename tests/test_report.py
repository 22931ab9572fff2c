"""pbm report: one self-contained HTML file of a sweep's analysis."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser_check import find_chromium, report_check  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from pbmlib.workbench.sweeps import run_sweep

    tmp = tmp_path_factory.mktemp("report")
    config = {"name": "mini", "output_root": str(tmp / "runs"), "workers": 1,
              "stages": [{"name": "mixing", "notebook": str(ROOT / "notebooks" / "01_mixing.ipynb"),
                          "parameters": {"n_images": 40}, "grid": {"block_height": [5, 1]}}],
              "analysis": str(ROOT / "notebooks" / "04_analysis.ipynb")}
    path = tmp / "mini.yaml"
    path.write_text(yaml.safe_dump(config))
    return Path(run_sweep(path, progress=False)["sweep_dir"])


def test_report_is_one_file_with_embedded_figures_and_its_provenance(sweep):
    from pbmlib.workbench.cli import main

    assert main(["report", str(sweep)]) == 0
    text = (sweep / "report.html").read_text()
    sources = re.findall(r'<img[^>]*src="([^"]*)"', text)
    assert len(sources) >= 1 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "git commit" in text and "Versions" in text and "mixing" in text
    assert "collect_results(" not in text  # code hidden


def test_report_without_analysis_is_a_one_line_error(tmp_path, capsys):
    from pbmlib.workbench.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "no executed analysis notebook" in capsys.readouterr().err


@pytest.mark.skipif(find_chromium() is None or importlib.util.find_spec("playwright") is None,
                    reason="needs Chromium ('sudo apt-get install chromium') and playwright (pip install -e '.[browser]')")
def test_report_renders_in_chromium_with_no_broken_image(sweep, tmp_path):
    from pbmlib.workbench.report import write_report

    found = report_check(write_report(sweep), tmp_path / "report.png")
    assert found["images"] >= 1 and found["broken_images"] == 0 and found["external_images"] == 0
    assert found["code_cells_shown"] == 0
