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


def test_the_readme_one_page_runs_as_written():
    """The first block of "pbmlib in one page" runs and gives the figures its comments state; the
    study block (minutes of training) parses and imports what it names."""
    import ast

    import numpy as np

    from readme_blocks import readme_block

    mixing = readme_block("## pbmlib in one page", "import pbmlib")
    namespace: dict = {}
    exec(compile(mixing, "README: pbmlib in one page", "exec"), namespace)
    assert namespace["nb"] == 25 and namespace["mixed"].dtype == np.uint8
    assert "-5038.1" in mixing and round(namespace["pbmlib"].restoration_log10_probability(
        {"face": 100, "non-face": 100}, 25), 1) == -5038.1
    study = readme_block("## pbmlib in one page", "from pbmlib.learn.learner import KerasLearner")
    imports = [node for node in ast.walk(ast.parse(study)) if isinstance(node, ast.ImportFrom)]
    for node in imports:
        module = __import__(node.module, fromlist=[a.name for a in node.names])
        assert all(hasattr(module, a.name) for a in node.names)
