"""The CLI loads the heavy libraries only for the commands that use them."""

import subprocess
import sys


def test_loading_the_cli_leaves_scikit_learn_scipy_and_matplotlib_alone():
    heavy = "('sklearn', 'scipy', 'matplotlib')"
    probe = f"import sys, clm.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
