"""The user guide's examples run as printed (its Pitfalls section shows real error messages)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user_guide.rst"


@pytest.mark.skipif(not GUIDE.is_file(), reason="the documentation is not part of this checkout")
def test_user_guide_examples_run_as_printed():
    result = doctest.testfile(str(GUIDE), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                              raise_on_error=False, verbose=False)
    assert result.attempted > 10
    assert result.failed == 0
