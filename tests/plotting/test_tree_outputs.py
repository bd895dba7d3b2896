"""The tree's figure (plot_tree) and command (``loglik-map tree``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import loglik_map as lm
from loglik_map._cli import main
from loglik_map.errors import WrongTypeError

matplotlib = pytest.importorskip("matplotlib", reason="needs the plot extra (matplotlib)")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tree(markov_families) -> lm.core.ModelTree:
    return lm.ModelMap(markov_families.matrix).tree(n_boot=60, seed=0, progress=False)


def test_plot_tree_writes_au_and_bp_and_colours_the_supported_clades(tree, tmp_path):
    from loglik_map.plotting import plot_tree

    ax = plot_tree(tree)
    texts = [t for t in ax.texts]
    au = [t.get_text() for t in texts if t.get_color() == "#c0392b"]
    bp = [t.get_text() for t in texts if t.get_color() == "#1e8449"]
    assert au == [str(round(100 * a)) for a in tree.clades.au.iloc[:-1]]
    assert bp == [str(round(100 * b)) for b in tree.clades.bp.iloc[:-1]]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(tree.order)
    colours = {matplotlib.colors.to_hex(c.get_color()[0]) for c in ax.collections}
    assert len(colours - {matplotlib.colors.to_hex("0.35")}) == len(tree.significant(max_only=True))
    assert "bits/byte" in ax.get_ylabel()
    ax.figure.savefig(tmp_path / "tree.png")
    assert (tmp_path / "tree.png").stat().st_size > 1000
    with pytest.raises(WrongTypeError, match="needs a ModelTree"):
        plot_tree(lm.ModelMap(lm.synthetic.make_markov_example(n_texts=50).matrix))


def test_the_tree_command_prints_the_clades_and_saves_the_figure_and_newick(markov_families, tmp_path, capsys):
    example = markov_families
    path = tmp_path / "m.nc"
    lm.io.save_matrix(example.matrix, path)
    args = [str(path), "--clip", "0", "--n-boot", "60", "--seed", "0", "--no-progress"]
    assert main(["tree", *args, "--format", "json", "--plot", str(tmp_path / "t.png"),
                 "--newick", str(tmp_path / "t.nwk")]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[: out.rindex("]") + 1])
    api = lm.ModelMap(example.matrix).tree(n_boot=60, seed=0, progress=False)
    np.testing.assert_allclose([r["au"] for r in rows], api.clades.au)
    assert [r["members"] for r in rows] == [", ".join(m) for m in api.clades.members]
    assert (tmp_path / "t.png").exists() and (tmp_path / "t.nwk").read_text().strip() == api.to_newick()
    assert main(["tree", *args, "--significant", "--scales", "0.7", "1", "1.3"]) == 0
    assert "au" in capsys.readouterr().out
    assert main(["tree", *args, "--newick", str(tmp_path / "t.nwk")]) == 2  # an existing file needs --overwrite
    assert "t.nwk" in capsys.readouterr().out
    assert main(["tree", *args, "--newick", str(tmp_path / "t.nwk"), "--overwrite", "--format", "csv"]) == 0
    capsys.readouterr()
    assert main(["tree", *args, "--linkage", "ward"]) == 2
    assert "Ward linkage needs Euclidean" in capsys.readouterr().out


def test_the_trees_page_runs_as_written(monkeypatch, tmp_path, capsys):
    from ..test_doc_snippets import HUB, ROOT, python_blocks

    page = ROOT / "docs" / "trees.rst"
    if not page.is_file():
        pytest.skip("the documentation is not part of this checkout")
    blocks = [b for b in python_blocks(page) if not b.startswith(HUB)]
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0].replace("n_boot=1000", "n_boot=50"), "trees.rst", "exec"), {"__name__": "__snippet__"})
    assert "<ModelTree (model: 9, clade: 8)> heights in bits/byte" in capsys.readouterr().out
