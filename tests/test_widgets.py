"""The widget explorers, driven headless: set controls, trigger, assert on results and display."""

import numpy as np
import pytest

import pbmlib
from pbmlib.workbench.widgets import MixingExplorer, QuickSweepPanel, explore_mixing, quick_sweep

PNG = b"\x89PNG"


def test_explore_mixing_function():
    faces = pbmlib.load_faces()
    r = explore_mixing(faces, block=(5, 5), seed=0)
    expected = pbmlib.mix_blocks(faces.images, faces.labels, block=(5, 5), seed=0)
    np.testing.assert_array_equal(r["mixed"], expected)
    assert r["ssim_mean"] == pytest.approx(pbmlib.ssim_scores(faces.images, expected).mean())
    assert r["n_blocks"] == 25 and r["log10_restoration_probability"] == pytest.approx(-5038.129, abs=1e-3)
    assert r["png"].startswith(PNG)


def test_mixing_explorer_controls_drive_the_display():
    explorer = MixingExplorer(("faces", "mnist"))
    assert bytes(explorer.image.value).startswith(PNG) and "SSIM" in explorer.status.value
    assert list(explorer.block_height.options) == [1, 5, 25]  # only sizes that divide 25
    first = explorer.image.value
    explorer.block_height.value = 25  # auto update on change
    assert explorer.result["n_blocks"] == 25 // explorer.block_width.value
    assert explorer.image.value != first
    assert f"N_b</b> = {explorer.result['n_blocks']}" in explorer.status.value
    explorer.auto.value = False
    before = explorer.result
    explorer.p.value = 0.0
    assert explorer.result is before  # no update without auto ...
    explorer.run_button.click()  # ... until Run is pressed
    assert explorer.result["ssim_mean"] == pytest.approx(1.0)
    explorer.dataset.value = "mnist"  # block options follow the image size
    assert list(explorer.block_height.options) == [1, 2, 4, 7, 14, 28]
    assert explorer.result["mixed"].shape[1:] == (28, 28)


def test_quick_sweep_function_and_progress():
    faces = pbmlib.load_faces()
    calls = []
    table = quick_sweep(faces, "p", [0.0, 1.0], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    assert table.loc[0, "ssim_mean"] == pytest.approx(1.0) and table.loc[1, "ssim_mean"] < 0.6
    with pytest.raises(ValueError, match="parameter must be"):
        quick_sweep(faces, "colour", [1])


@pytest.mark.slow
def test_quick_sweep_panel_runs_and_reports_errors():
    panel = QuickSweepPanel("faces")
    panel.parameter.value = "rounds"
    assert panel.values.value == "1, 2, 3, 5"
    panel.values.value = "1, 3"
    panel.train.value = True
    panel.epochs.value = 1
    panel.run_button.click()
    assert panel.progress.value == panel.progress.max == 3  # the reference training, then both values
    assert panel.table["value"].tolist() == ["originals", 1, 3]
    assert panel.table["test_accuracy_mean"].notna().all()
    assert bytes(panel.image.value).startswith(PNG) and "done" in panel.status.value
    panel.values.value = "1, two"
    assert panel.run() is None and "cannot read" in panel.status.value
