"""The command line and import hygiene."""

from __future__ import annotations

import subprocess
import sys

import loglik_map as lm


def test_importing_loglik_map_does_not_import_torch_or_numba():
    code = "import sys, loglik_map; print('torch' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_public_api_is_declared():
    for name in lm.__all__:
        assert hasattr(lm, name), name
    assert "ModelMap" in lm.__all__ and "LogLikelihoodMatrix" in lm.__all__


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "loglik_map", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and lm.__version__ in proc.stdout
