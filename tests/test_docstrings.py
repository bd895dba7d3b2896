"""The numpydoc gate of ``tools/check_docstrings.py``: every public callable passes every check but a short list."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("numpydoc", reason="the docstring gate needs the 'lint' extra (numpydoc)")

TOOL = Path(__file__).resolve().parent.parent / "tools" / "check_docstrings.py"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_docstrings", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_ignore_list_is_short_and_documented(checker):
    assert set(checker.IGNORED) <= {"ES01", "SA01", "EX01", "GL01", "GL02", "SS05"}
    assert all(reason for reason in checker.IGNORED.values())


def test_inherited_and_sub_package_methods_are_walked(checker):
    names = set(checker.public_names())
    # to_dict is inherited from TidyResult; flag_outlier_models is in a sub-package's __all__
    assert "loglik_map.core._modelmap.ModelMap.summary" in names
    assert "loglik_map.core._matrix.LogLikelihoodMatrix.where_models" in names
    assert "loglik_map.core._results.KLEstimate.to_dict" in names
    assert "loglik_map.dynamics._outliers.flag_outlier_models" in names  # a sub-package's __all__


def test_a_missing_returns_section_is_found(checker, monkeypatch):
    def undocumented(x: int) -> int:
        """Double ``x``.

        Parameters
        ----------
        x : int
            A number.
        """
        return 2 * x

    monkeypatch.setattr(sys.modules[__name__], "undocumented", undocumented, raising=False)
    found = checker.problems(f"{__name__}.undocumented")
    assert any(" RT01 " in p for p in found)


def test_every_public_callable_passes(checker):
    found = [p for name in checker.public_names() for p in checker.problems(name)]
    assert not found, "\n".join(found)
