"""The widget explorers, driven headless: set controls, trigger, assert on results and display."""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
from test_figures import figure_problems

import pbmlib
from pbmlib.workbench.widgets import (MixingExplorer, QuickSweepPanel, explore_mixing, plot_quick_sweep,
                                      quick_sweep)

PNG = b"\x89PNG"
ROOT = Path(__file__).resolve().parents[1]


def test_explore_mixing_function():
    faces = pbmlib.load_faces()
    r = explore_mixing(faces, block=(5, 5), seed=0)
    expected, sources = pbmlib.mix_blocks(faces.images, faces.labels, block=(5, 5), seed=0, return_sources=True)
    np.testing.assert_array_equal(r["mixed"], expected)
    assert r["ssim_mean"] == pytest.approx(pbmlib.ssim_scores(faces.images, expected).mean())
    assert r["n_blocks"] == 25 and r["log10_restoration_probability"] == pytest.approx(-5038.129, abs=1e-3)
    assert r["kept_fraction"] == pytest.approx((sources == np.arange(len(faces))[:, None, None]).mean())
    assert r["n_images"] == len(faces) and r["png"].startswith(PNG)


def test_mixing_explorer_controls_drive_the_display_and_explain_themselves():
    explorer = MixingExplorer(("faces", "mnist"))
    assert bytes(explorer.image.value).startswith(PNG) and "SSIM" in explorer.status.value
    for words in ("blocks per image", "of the blocks still hold their own pixels", "random image of the same label",
                  "rebuilding every image", "mixed 200 images of faces in"):
        assert words in explorer.status.value
    assert list(explorer.block_height.options) == [1, 5, 25]  # only sizes that divide 25
    first = explorer.image.value
    explorer.block_height.value = 25  # auto update on change
    assert explorer.result["n_blocks"] == 25 // explorer.block_width.value
    assert explorer.image.value != first
    assert f"<b>N_b</b> = {explorer.result['n_blocks']}" in explorer.status.value
    explorer.auto.value = False
    before = explorer.result
    explorer.p.value = 0.0
    assert explorer.result is before  # no update without auto ...
    explorer.run_button.click()  # ... until Run is pressed
    assert explorer.result["ssim_mean"] == pytest.approx(1.0) and explorer.result["kept_fraction"] == 1.0
    explorer.dataset.value = "mnist"  # block options follow the image size
    assert list(explorer.block_height.options) == [1, 2, 4, 7, 14, 28]
    assert explorer.result["mixed"].shape[1:] == (28, 28)


def test_the_below_the_floor_hint_names_the_real_cause():
    explorer = MixingExplorer(("faces",), auto=False)
    explorer.block_height.value, explorer.block_width.value = 5, 5
    explorer.p.value, explorer.rounds.value = 0.5, 3  # p is moderate: the rounds make it
    result = explorer.run()
    assert result["ssim_mean"] < result["ssim_floor_mean"]
    assert result["kept_fraction"] == pytest.approx(0.5 ** 3, abs=0.03)
    status = explorer.status.value
    assert "SSIM is below its floor: only 12% of the blocks kept their own pixels" in status
    assert "N_t = 3 rounds" in status and "p = 0.5" in status and "at high p" not in status
    explorer.rounds.value = 1
    assert "below its floor" not in explorer.run() and "below its floor" not in explorer.status.value


def test_quick_sweep_function_and_progress():
    faces = pbmlib.load_faces()
    calls = []
    table = quick_sweep(faces, "p", [0.0, 1.0], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    assert table.loc[0, "ssim_mean"] == pytest.approx(1.0) and table.loc[1, "ssim_mean"] < 0.6
    with pytest.raises(ValueError, match="parameter must be"):
        quick_sweep(faces, "colour", [1])


def test_quick_sweep_follows_the_explorers_data_set_and_settings():
    explorer = MixingExplorer(("faces", "mnist"), auto=False)
    panel = QuickSweepPanel(("faces", "mnist"), explorer=explorer)
    assert panel.values.value == "25x5, 5x5, 5x1, 1x1"
    explorer.dataset.value = "mnist"
    assert panel.dataset.value == "mnist" and panel.values.value == "14x14, 7x7, 4x4, 2x2"
    explorer.n_donors.value = 3
    panel.parameter.value = "p"
    panel.values.value = "0.0, 1.0"
    table = panel.run()
    assert table["n_train"].iloc[0] + table["n_test"].iloc[0] == len(pbmlib.load_dataset("mnist"))
    assert table.loc[0, "ssim_mean"] == pytest.approx(1.0)
    assert panel.status.value.startswith("done: 2 values of p, replacement probability on mnist (5000 images)")
    assert panel.progress_text.value.startswith("setting 2 of 2: ")
    assert figure_problems(plot_quick_sweep(table, dataset="mnist (5000 images)")) == []


def test_progress_says_numbers_and_the_time_left():
    panel = QuickSweepPanel("faces")
    advance = panel._advance(time.perf_counter() - 10.0, "epoch")
    advance(5, 20)
    assert (panel.progress.value, panel.progress.max) == (5, 20)
    assert panel.progress_text.value == "epoch 5 of 20: 10 s, about 30 s left"


def test_every_message_the_panel_shows_is_escaped():
    panel = QuickSweepPanel("faces")
    panel.values.value = "<img src=x onerror=alert(1)>"
    assert panel.run() is None
    assert "&lt;img src=x onerror=alert(1)&gt;" in panel.status.value and "<img" not in panel.status.value
    panel.parameter.value = "n_donors"
    panel.values.value = "0"  # refused by the mixing itself
    assert panel.run() is None and "color:#b00" in panel.status.value and "<script" not in panel.status.value


@pytest.mark.slow
def test_quick_sweep_panel_runs_trains_and_counts_what_it_ran():
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
    assert bytes(panel.image.value).startswith(PNG)
    assert panel.status.value.startswith("done: 2 values of N_t, rounds on faces (200 images) (and the originals")
    assert "epoch 3 of 3" in panel.progress_text.value and "Right: accuracy" in panel.caption.value
    fig = plot_quick_sweep(panel.table, dataset="faces (200 images)")
    assert figure_problems(fig) == []
    panel.values.value = "1, two"
    assert panel.run() is None and "cannot read" in panel.status.value


def _kernels_of(pid: int) -> int:
    """Kernel processes started by the process ``pid`` (Linux /proc)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            count += parent == pid and b"ipykernel_launcher" in command
    return count


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("voila") is None or not Path("/proc/self/stat").exists(),
                    reason="needs Voila (.venv/bin/python -m pip install -e '.[app]') and Linux /proc")
def test_the_app_caps_its_kernels_and_culls_idle_ones(tmp_path):
    """Every page load starts a kernel: beyond the cap a page is refused with a sentence, and idle
    kernels are shut down (here after 3 s; pbm app waits 15 min)."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    sys.path.insert(0, str(ROOT / "scripts"))
    from browser_check import _free_port, _jupyter_env, _wait_for_server

    from pbmlib.workbench.app import voila_command

    port = _free_port()
    command = voila_command(ROOT / "notebooks" / "00_explore.ipynb", port=port, max_kernels=2, cull_idle_seconds=3,
                            cull_interval_seconds=1)
    server = subprocess.Popen(command, env=_jupyter_env(tmp_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_server(url, server, 120)  # the first page load
        urllib.request.urlopen(url, timeout=120).read()
        assert _kernels_of(server.pid) == 2
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=120).read()
        assert refused.value.code == 503 and "already serves 2 pages" in refused.value.reason
        deadline = time.time() + 30
        while _kernels_of(server.pid) and time.time() < deadline:
            time.sleep(0.5)
        assert _kernels_of(server.pid) == 0  # idle kernels culled
        urllib.request.urlopen(url, timeout=120).read()  # and pages are served again
        assert _kernels_of(server.pid) == 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_pbm_app_serves_the_working_copy_with_kernels_capped_and_culled(monkeypatch, capsys):
    import subprocess

    from pbmlib.workbench.app import voila_command
    from pbmlib.workbench.cli import main

    served = []
    monkeypatch.setattr(subprocess, "call", lambda command: served.append(command) or 0)
    if importlib.util.find_spec("voila") is None:
        assert main(["app"]) == 2 and "needs Voila" in capsys.readouterr().err
        return
    assert main(["app", "--port", "8899"]) == 0
    (command,) = served
    assert command[3] == str(ROOT / "notebooks" / "00_explore.ipynb") and Path(command[3]).is_file()
    assert "--CappedKernelManager.max_kernels=20" in command and "--MappingKernelManager.cull_connected=True" in command
    assert "--MappingKernelManager.cull_idle_timeout=900" in command and "--no-browser" in command
    assert "at most 20 pages at once" in capsys.readouterr().out
    with pytest.raises(ValueError, match="max_kernels must be a whole number"):
        voila_command("x.ipynb", port=8866, max_kernels=0)
