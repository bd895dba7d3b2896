"""The README's and the docs index's Python snippets run as written, in order, on the built-in data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A snippet whose first line is this comment needs the Hugging Face hub and is not run.
HUB = "# Needs the Hugging Face hub"


def python_blocks(path: Path) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives of an RST file, dedented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if re.match(r"\.\. code-block:: python\s*$", lines[i]):
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith(":")):
                i += 1  # blank lines and directive options
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
                body.append(lines[i][3:])
                i += 1
            blocks.append("\n".join(body).strip() + "\n")
        else:
            i += 1
    return blocks


@pytest.mark.parametrize("name", ["README.rst", "docs/index.rst"])
def test_snippets_run_as_written(name, tmp_path, monkeypatch, capsys):
    path = ROOT / name
    if not path.is_file():
        pytest.skip(f"{name} is not part of this checkout")
    pytest.importorskip("matplotlib", reason="plot tests need the 'plot' extra (matplotlib)").use("Agg")
    blocks = [b for b in python_blocks(path) if not b.startswith(HUB)]
    assert blocks, f"no runnable snippet in {name}"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__snippet__"}
    for k, code in enumerate(blocks):
        try:
            exec(compile(code, f"{name} snippet {k + 1}", "exec"), namespace)
        except Exception as err:
            pytest.fail(f"{name} snippet {k + 1} failed: {type(err).__name__}: {err}\n{code}")
    out = capsys.readouterr().out
    assert "bits/byte" in out and "family0-member0" in out


def test_the_extractor_finds_every_block_and_skips_only_marked_ones():
    readme = python_blocks(ROOT / "README.rst")
    assert len(readme) == 3 and readme[-1].startswith(HUB) and "make_markov_example" in readme[0]
