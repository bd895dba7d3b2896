"""Doctests of the package that need an extra are skipped, naming it, when the extra is not installed.

(The tests under ``tests/`` skip themselves with ``pytest.importorskip``; a docstring example
cannot, so the few that need an optional package are listed here.)
"""

from __future__ import annotations

import importlib.util

import pytest

#: ``{function whose example needs it: (package, extra that installs it)}``
DOCTEST_EXTRAS = {"predict_benchmarks": ("sklearn", "predict")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if type(item).__name__ != "DoctestItem":
            continue
        need = DOCTEST_EXTRAS.get(item.name.rpartition(".")[2])
        if need is not None and importlib.util.find_spec(need[0]) is None:
            item.add_marker(pytest.mark.skip(reason=f"the example needs the '{need[1]}' extra ({need[0]})"))
