"""The command line and import hygiene."""

from __future__ import annotations

import subprocess
import sys

import loglik_map as lm
from loglik_map.cli import main


def test_importing_loglik_map_does_not_import_torch_or_numba():
    code = "import sys, loglik_map; print('torch' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_public_api_is_declared():
    for name in lm.__all__:
        assert hasattr(lm, name), name
    assert "ModelMap" in lm.__all__ and "LogLikelihoodMatrix" in lm.__all__


def test_demo_prints_a_kl_table_with_ses(capsys):
    assert main(["demo", "--n-texts", "400"]) == 0
    out = capsys.readouterr().out
    assert "text-entropy estimate" in out and "bits/byte" in out
    rows = [line for line in out.splitlines() if line.strip().startswith("family")]
    assert len(rows) == 6
    for row in rows:
        est, se, exact = (float(x) for x in row.split()[2:5])
        assert est > 0 and se > 0 and exact > 0


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "loglik_map", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and lm.__version__ in proc.stdout
