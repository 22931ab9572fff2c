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
    for step in ("install", "resnet50 float32", "resnet50 mixed_bfloat16", "lira"):
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
    for name in gpu_check.FASHION_FILES:
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
