"""Lineages from model cards, text-resampling stability, the spiral period, plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm


def _card(folder, base=None):
    folder.mkdir()
    if base is None:
        (folder / "README.md").write_text("# a base model\n", encoding="utf-8")
        return str(folder)
    value = base if isinstance(base, str) else "\n" + "\n".join(f"  - {b}" for b in base)
    (folder / "README.md").write_text(f"---\nlicense: mit\nbase_model: {value}\n---\n# card\n", encoding="utf-8")
    return str(folder)


def test_lineage_from_local_model_cards(tmp_path):
    root = _card(tmp_path / "root")
    child = _card(tmp_path / "child", root)
    grandchild = _card(tmp_path / "grandchild", child)
    merge = _card(tmp_path / "merge", [root, child])
    df = lm.io.lineage([root, child, grandchild, merge]).set_index("model")
    assert df.loc[child, "parent"] == root and df.loc[grandchild, "parent"] == child
    assert list(df["depth"]) == [0, 1, 2, 0]
    assert bool(df.loc[merge, "merge"]) and pd.isna(df.loc[merge, "parent"]) and df.loc[merge, "n_parents"] == 2
    assert pd.isna(df.loc[root, "parent"])
    assert lm.io.read_base_model(root) == []


def test_text_resampling_stability_on_the_markov_example():
    ex = lm.make_markov_example(n_families=3, members_per_family=3, n_texts=2000, seed=1)
    res = lm.stats.text_resampling_stability(ex.matrix, n_splits=2, seed=0, n_boot=100, max_pairs=12)
    assert res.correlation > 0.95
    assert res.split_kl.sizes == {"split": 2, "pair": 36}
    ratio = res.pairs.bootstrap_se / res.pairs.se
    assert 0.6 < float(np.median(ratio)) < 1.6  # closed-form SE agrees with the bootstrap
    assert "correlation" in str(res)


def test_spiral_period_of_a_helix():
    t = np.arange(120)
    helix = np.column_stack([5 * t, 3 * np.cos(2 * np.pi * t / 20), 2 * np.sin(2 * np.pi * t / 20)])
    res = lm.dynamics.spiral_period(helix, component=2)
    assert res.period == 20 and len(res.zero_crossings) >= 3
    assert lm.dynamics.spiral_period(np.column_stack([t, t**2, t**3]).astype(float), component=3).acf[0] == 1.0


def test_plots_return_axes_with_content():
    matplotlib = pytest.importorskip("matplotlib", reason="plot tests need the 'plot' extra (matplotlib)")
    matplotlib.use("Agg")
    from loglik_map import plotting

    ex = lm.make_markov_example(n_families=2, members_per_family=3, n_texts=300, seed=0)
    matrix = lm.LogLikelihoodMatrix.from_dataarray(ex.matrix.data.assign_coords(step=("model", [0, 1, 2, 0, 1, 2])))
    mm = lm.ModelMap(matrix)
    traj = lm.Trajectory(mm, by="family")
    ax = plotting.plot_map(mm, color="family", trajectory=traj, links=[("family0-member0", "family1-member0")])
    assert len(ax.collections) == 2 and len(ax.lines) == 5
    pairs = lm.kl_scale_pairs(mm, {"within": lm.differing_only_in("member", by=("family",)),
                                   "across": lm.random_pairs(5)})
    ax = plotting.plot_kl_scale(pairs)
    assert ax.get_yscale() == "symlog" and len(ax.collections) == 4  # a strip and a median bar per setting
    ax = plotting.plot_step_kl(traj.step_kl())
    assert len(ax.lines) == 2
    walk = lm.synthetic.fbm(40, 0.5, dim=50, seed=0)
    D = ((walk[:, None] - walk[None]) ** 2).sum(-1)
    wtraj = lm.Trajectory.from_distances(D, np.arange(41))
    ax = plotting.plot_displacement(wtraj, 5, window=10)
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    ax = plotting.plot_diffusion_exponents(wtraj.diffusion_exponents(window=10), wtraj.diffusion_exponents(window=5))
    assert len(ax.lines) == 3  # two curves + the c = 1 line
    import matplotlib.pyplot as plt

    plt.close("all")
