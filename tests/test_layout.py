"""The package's tiers: numpy-only code never imports Keras."""

import subprocess
import sys

import pytest

NUMPY_TIER = ["pbmlib", "pbmlib.data.datasets", "pbmlib.data.augmentation", "pbmlib.data.split", "pbmlib.pbm.mixing",
              "pbmlib.pbm.restoration", "pbmlib.pbm.release", "pbmlib.schemes", "pbmlib.schemes.registry",
              "pbmlib.privacy.similarity", "pbmlib.privacy.matchers", "pbmlib.privacy.attacks",
              "pbmlib.privacy.scorecard", "pbmlib.privacy.lira"]


@pytest.mark.parametrize("module", NUMPY_TIER)
def test_numpy_tier_never_imports_keras(module):
    code = (f"import sys, {module}; heavy = sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules); "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
