"""environment.yml and pyproject.toml must describe one environment."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_project_with_its_dev_extra():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = env["dependencies"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip_section == ["-e .[dev]"]  # pyproject.toml is the one list of dependencies
    assert "pip" in deps
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    conda_version = tuple(int(x) for x in python.split("=")[1].split("."))
    minimum = tuple(int(x) for x in re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1).split("."))
    assert conda_version >= minimum
    assert "dev" in project["optional-dependencies"]


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^```bash\n(.*?)\n```", readme, flags=re.S | re.M)[:3]
    assert len(commands) == 3
    for command in commands:
        assert command.strip() in ci
