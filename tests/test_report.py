"""pbm report: one self-contained HTML file of a sweep's analysis, that can be mailed as it is."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from browser_check import find_chromium, report_check  # noqa: E402

HAS_BROWSER = find_chromium() is not None and importlib.util.find_spec("playwright") is not None


def test_paths_in_the_provenance_are_written_relative_to_the_sweep():
    from pbmlib.workbench.report import _shareable

    sweep = Path("/home/someone/work/papermill_runs/mini")
    shown = _shareable({"dataset": "/home/someone/photos", "grid": {"folder": ["/home/someone/work/data/a"]},
                        "epochs": 3, "name": "faces"}, sweep)
    assert shown == {"dataset": "../../../photos", "grid": {"folder": ["../../data/a"]}, "epochs": 3, "name": "faces"}


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


@pytest.mark.slow
def test_report_is_one_file_a_reader_can_use_as_it_is(sweep):
    from pbmlib.workbench.cli import main

    assert main(["report", str(sweep)]) == 0
    text = (sweep / "report.html").read_text()
    sources = re.findall(r'<img[^>]*src="([^"]*)"', text)
    assert len(sources) >= 1 and all(s.startswith("data:image/png;base64,") for s in sources)
    # nothing fetched: no script, style sheet or font from elsewhere
    assert not re.search(r'<script[^>]+src=', text) and not re.search(r'<link[^>]+href="(https?:)?//', text)
    assert "require.js" not in text and "MathJax" not in text and "cdn" not in text.lower().replace("cdn-", "")
    # no absolute path, no debug or repr line, code hidden
    assert str(sweep.parent) not in text and str(ROOT) not in text
    assert "wrote " not in text and "collect_results(" not in text and "'no " not in text
    # one title, a table of contents, provenance
    assert text.count("<h1") == 1 and '<nav class="pbm-toc">' in text and 'href="#how-this-was-made"' in text
    assert "git commit" in text and "01_mixing" in text and "numpy" in text
    # empty sections said in words, figures captioned and read, tables with their spread
    assert "No trained block-mixing runs in this sweep" in text and "No augmentation runs in this sweep" in text
    assert "<strong>Figure 1.</strong>" in text and "SSIM falls from" in text
    assert "mean ± sd over images" in text and "pbm-table" in text


def test_report_without_analysis_is_a_one_line_error(tmp_path, capsys):
    from pbmlib.workbench.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "no executed analysis notebook" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BROWSER, reason="needs Chromium (apt-get install chromium) and playwright "
                                            "(.venv/bin/python -m pip install -e '.[browser]'); .ci/run installs both")
def test_report_renders_in_chromium_with_the_network_off(sweep, tmp_path):
    from pbmlib.workbench.report import write_report

    found = report_check(write_report(sweep), tmp_path / "report.png")
    assert found["external_requests"] == []
    assert found["images"] >= 1 and found["broken_images"] == 0 and found["code_cells_shown"] == 0
    assert found["title"] == "Sweep mini: report"
    assert found["contents"][-1] == "How this was made" and len(found["contents"]) >= 5
