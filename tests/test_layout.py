"""The package's tiers: a lower tier never imports a higher one (statically and at run time).

Tiers, bottom up: the shared helpers (``pbmlib._validation``, ``_fs``, ``_io``); the numpy tier
(``data``, ``pbm``, ``schemes``, ``privacy``, ``study``), which never imports Keras; the Keras tier
(``learn``); the top (``workbench``). A module may import its own tier and the tiers below.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pbmlib"
TIERS = {"_validation": 0, "_fs": 0, "_io": 0, "__init__": 1, "data": 1, "pbm": 1, "schemes": 1, "privacy": 1,
         "study": 1, "learn": 2, "workbench": 3}
HEAVY = ("keras", "tensorflow", "jax")
MODULES = sorted(p for p in ROOT.rglob("*.py"))


def tier_of(module: str) -> int:
    """Tier of a dotted module name inside pbmlib (``pbmlib.privacy.audit`` -> 1)."""
    parts = module.split(".")
    return TIERS[parts[1] if len(parts) > 1 else "__init__"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """Every pbmlib module ``path`` imports (at any depth in the file, lazily too) and external heavy ones."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_higher_tier(path):
    name = module_name(path)
    own = tier_of(name) if name != "pbmlib" else 1
    for target, line in imports(path):
        if target.split(".")[0] in HEAVY:
            assert own >= 2, f"{name} (line {line}) imports {target}: only the Keras tier and above may"
        if target.startswith("pbmlib.") and target.split(".")[1] in TIERS:
            assert tier_of(target) <= own, f"{name} (line {line}) imports {target}, a higher tier"


@pytest.mark.parametrize("module", ["pbmlib", "pbmlib.study", "pbmlib.privacy", "pbmlib.schemes", "pbmlib.pbm.release",
                                    "pbmlib.data.store", "pbmlib.workbench.sweeps", "pbmlib.workbench.results",
                                    "pbmlib.learn"])
def test_importing_never_loads_keras(module):
    """Not the numpy tier, and not the Keras package itself until a Keras entry point runs."""
    code = (f"import sys, {module}; heavy = sorted(m for m in {HEAVY!r} if m in sys.modules); print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def test_importing_changes_no_process_state():
    """Importing the package leaves the environment, standard error and the loggers as they were."""
    code = ("import logging, os, sys; before = (dict(os.environ), logging.getLogger('tensorflow').filters[:]); "
            "import pbmlib, pbmlib.study, pbmlib.learn, pbmlib.workbench.cli; "
            "after = (dict(os.environ), logging.getLogger('tensorflow').filters[:]); print(before == after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True" and out.stderr == ""
