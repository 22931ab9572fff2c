"""benchmarks/gpu_check.py on the CPU side: the plan, what it reports missing, the offline commands."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing it imports neither Keras nor JAX
    return module


def test_dry_run_prints_every_step_within_eight_minutes_and_what_is_missing(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--dry-run", "--wheels", str(tmp_path / "w"), "--data", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    for step in ("install", "resnet50 float32", "resnet50 mixed_bfloat16", "small_cnn", "lira"):
        assert f"  {step} (" in out
    assert "--no-index --no-deps" in out and "--target /tmp/site" in out
    assert "bench_lira.py --plain-models 2 --fashion-mnist-dir" in out
    assert sum(gpu_check.BUDGET.values()) < 480 and "under 8 minutes" in out
    assert "ready: no" in out and "the keras wheel" in out and "train-images-idx3-ubyte.gz" in out


def test_ready_when_the_wheels_and_data_are_there(gpu_check, tmp_path, capsys):
    wheels, data = tmp_path / "w", tmp_path / "d"
    wheels.mkdir(), data.mkdir()
    for name in ("keras-3.0-py3-none-any.whl", "namex-0.1-py3-none-any.whl", "optree-0.1-cp312-x.whl"):
        (wheels / name).write_bytes(b"")
    for name in gpu_check.FASHION_FILES + (gpu_check.FRONTIER_PLAN,):
        (data / name).write_bytes(b"")
    assert gpu_check.missing(wheels, data) == []
    command = gpu_check.install_command(wheels)
    assert command[-3:] == [str(wheels / n) for n in sorted(p.name for p in wheels.iterdir())]
    gpu_check.main(["--dry-run", "--wheels", str(wheels), "--data", str(data)])
    assert "ready: yes" in capsys.readouterr().out
    assert gpu_check.run(tmp_path / "none", data) == 2  # refuses to start without the wheels


def test_wheels_are_downloaded_for_the_gpu_machines_python_at_the_versions_here(gpu_check):
    from importlib import metadata

    command = gpu_check.download_command(Path("/x"))
    assert command[command.index("--python-version") + 1] == "3.12" and "--no-deps" in command
    assert f"keras=={metadata.version('keras')}" in command and any(c.startswith("optree") for c in command)
    env = gpu_check.child_environment()
    assert env["KERAS_BACKEND"] == "jax" and env["PYTHONPATH"].startswith("/tmp/site")


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_frontiers_training_time_comes_from_the_planners_count_and_the_measured_rate(gpu_check, tmp_path):
    import json

    import yaml

    work = gpu_check.frontier_work()  # here, at --prepare: sweeps/frontier_fashion.yaml through the planner
    parameters = yaml.safe_load(gpu_check.FRONTIER_CONFIG.read_text())["stages"][0]["parameters"]
    settings, splits = len(parameters["schemes"]), parameters["n_splits"]
    assert work["shadow_models"] == 16 * splits and work["trainings"] == settings * splits * parameters["repeats"]
    assert work["image_epochs"] > work["trainings"] * parameters["n_images"] * parameters["epochs"]  # + shadows
    (tmp_path / gpu_check.FRONTIER_PLAN).write_text(json.dumps(work))
    line = "small_cnn 28x28x1 float32, batch 32, cuda:0: 50,000 training images/s (200 steps in 0.1 s)"
    rate = float(gpu_check._RATE.search(line).group(1).replace(",", ""))
    assert f"{work['image_epochs'] / 50_000 / 60:.1f} minutes of training" in gpu_check.frontier_estimate(rate,
                                                                                                     tmp_path)
