"""Benchmark scores from map coordinates: grouped cross-validation that cannot leak, the authors' procedure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm
from loglik_map.stats import map_features

pytest.importorskip("sklearn", reason="prediction tests need the 'predict' extra (scikit-learn)")


def _grouped_map(n_groups=24, per_group=4, N=200, seed=0):
    """Models in tight clusters (one per group) around random centres: a map where group is easy to see."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, N)) * 3
    K = n_groups * per_group
    L = -500 + np.repeat(centres, per_group, axis=0) + rng.normal(size=(K, N)) * 0.5
    names = [f"m{i}" for i in range(K)]
    types = np.repeat([f"type{g}" for g in range(n_groups)], per_group)
    m = lm.LogLikelihoodMatrix(L, models=names, texts=[f"t{k}" for k in range(N)], n_bytes=np.full(N, 800),
                               model_coords={"model_type": types})
    return lm.ModelMap(m), names, types, rng


def test_scores_that_depend_only_on_the_group_are_not_predicted():
    mm, names, types, rng = _grouped_map()
    value = dict(zip(np.unique(types), rng.normal(50, 10, size=len(np.unique(types)))))
    scores = pd.DataFrame({"bench": [value[t] for t in types]}, index=names)
    grouped = lm.predict_benchmarks(mm, scores, seed=0)
    # every model has its outer fold, and no group is on both sides of any split
    assert (grouped["fold"].values >= 0).all() and grouped.sizes["model"] == len(names)
    per_group = pd.Series(grouped["fold"].values).groupby(types).nunique()
    assert (per_group == 1).all()
    assert float(grouped["r"].sel(benchmark="bench")) < 0.3
    # the same scores under a plain K-fold (groups on both sides) look predictable: the test can fail
    leaky = lm.predict_benchmarks(mm, scores, groups=None, seed=0)
    assert float(leaky["r"].sel(benchmark="bench")) > 0.7


def test_scores_that_follow_the_map_are_predicted():
    mm, names, _types, rng = _grouped_map()
    y = mm.embed("pca", 1).values[:, 0]  # a direction the map spreads the groups along
    scores = pd.DataFrame({"linear": 50 + 10 * (y - y.mean()) / y.std(), "noise": rng.normal(size=len(names))},
                          index=names)
    scores.loc[names[3], "linear"] = np.nan  # a model without this score keeps its fold and is left out of it
    out = lm.predict_benchmarks(mm, scores, seed=1, alphas=[1e-2, 1, 1e2, 1e4])
    assert float(out["r"].sel(benchmark="linear")) > 0.8
    assert np.isnan(float(out["predicted"].sel(model=names[3], benchmark="linear")))
    assert out["fold"].sel(model=names[3]) >= 0
    assert out["alpha"].dims == ("benchmark", "outer_fold") and out.sizes["outer_fold"] == 5
    assert set(out["alpha"].values.ravel()) <= {1e-2, 1, 1e2, 1e4}
    # clipped to the training range: no prediction outside the scores seen
    assert out["predicted"].sel(benchmark="linear").max() <= scores["linear"].max()
    fixed = lm.predict_benchmarks(mm, scores, seed=1, clip=(45, 55))
    assert float(fixed["predicted"].max()) <= 55 and float(fixed["predicted"].min()) >= 45


def test_the_authors_procedure_by_hand():
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold

    mm, names, types, rng = _grouped_map(n_groups=10, per_group=3, N=80, seed=4)
    y = rng.uniform(20, 80, size=len(names))
    out = lm.predict_benchmarks(mm, pd.DataFrame({"acc": y}, index=names), seed=3, clip=(0, 100))
    X = map_features(mm)
    expected = np.empty_like(y)
    for fold, (train, test) in enumerate(GroupKFold(5, shuffle=True, random_state=3).split(X, groups=types)):
        reg = RidgeCV(alphas=[10.0**i for i in range(1, 10)], cv=5).fit(X[train], y[train])
        expected[test] = np.clip(reg.predict(X[test]), 0, 100)
        assert (out["fold"].values[test] == fold).all()
        assert float(out["alpha"].sel(benchmark="acc", outer_fold=fold)) == reg.alpha_
    np.testing.assert_allclose(out["predicted"].sel(benchmark="acc").values, expected, rtol=1e-10)
    assert float(out["r"][0]) == pytest.approx(np.corrcoef(y, expected)[0, 1])
    assert float(out["rmse"][0]) == pytest.approx(np.sqrt(np.mean((y - expected) ** 2)))


def test_features_are_the_authors_centred_loglikelihoods():
    mm, *_ = _grouped_map(n_groups=3, per_group=2, N=50)
    L = mm.matrix.values
    Q = L - L.mean(axis=1, keepdims=True)
    Q -= Q.mean(axis=0)
    np.testing.assert_allclose(map_features(mm), Q, rtol=1e-10, atol=1e-9)


def test_bad_input_is_refused():
    mm, names, _types, rng = _grouped_map(n_groups=4, per_group=3, N=40)
    scores = pd.DataFrame({"b": rng.normal(size=len(names))}, index=names)
    with pytest.raises(lm.LoglikMapError, match="4 groups cannot fill 5 folds"):
        lm.predict_benchmarks(mm, scores)
    loo = lm.predict_benchmarks(mm, scores, n_splits=None, inner_cv=3)
    assert loo.attrs["outer_cv"] == "LeaveOneGroupOut" and loo.sizes["outer_fold"] == 4
    with pytest.raises(lm.LoglikMapError, match="no model coordinate 'family'"):
        lm.predict_benchmarks(mm, scores, groups="family")
    with pytest.warns(lm.LoglikMapWarning, match="1 of the 1 scored models are not on the map"), \
            pytest.raises(lm.LoglikMapError, match="only 0 mapped models have scores"):
        lm.predict_benchmarks(mm, pd.DataFrame({"b": [1.0]}, index=["stranger"]))
    extra = pd.concat([scores, pd.DataFrame({"b": [1.0]}, index=["stranger"])])
    with pytest.warns(lm.LoglikMapWarning, match="first: 'stranger'"):
        out = lm.predict_benchmarks(mm, extra, n_splits=None, inner_cv=3)
    assert "stranger" not in out["model"].values
    with pytest.raises(lm.errors.WrongTypeError):
        lm.predict_benchmarks(mm, scores.to_numpy())


def test_plot_predicted_vs_actual(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot", reason="plot tests need the 'plot' extra (matplotlib)")
    mm, names, _types, rng = _grouped_map(n_groups=10, per_group=3, N=60)
    scores = pd.DataFrame({"a": rng.normal(size=len(names)), "b": rng.normal(size=len(names))}, index=names)
    out = lm.predict_benchmarks(mm, scores, seed=0)
    ax = lm.plotting.plot_predicted_vs_actual(out, "a", color="group")
    assert ax.get_title().startswith("a: r = ") and len(ax.collections[0].get_offsets()) == len(names)
    ax.figure.savefig(tmp_path / "pred.png")
    with pytest.raises(lm.LoglikMapError, match="name one"):
        lm.plotting.plot_predicted_vs_actual(out)
    plt.close("all")


def test_an_old_scikit_learn_is_named(monkeypatch):
    import sklearn.model_selection as ms

    class OldGroupKFold:
        def __init__(self, n_splits=5):
            pass

    monkeypatch.setattr(ms, "GroupKFold", OldGroupKFold)
    mm, names, _types, rng = _grouped_map(n_groups=6, per_group=2, N=40)
    with pytest.raises(lm.errors.MissingExtraError, match=r"scikit-learn ≥ 1.6.*loglik_map\[predict\]"):
        lm.predict_benchmarks(mm, pd.DataFrame({"b": rng.normal(size=len(names))}, index=names))


def test_features_of_a_selection_are_the_authors_weighted_q():
    """``get_tildeQ`` of code_for_prediction/src/train_and_pred.py: weighted row centring, columns × the
    scaling factors sqrt(c / (n π)), then centred over models."""
    mm, *_ = _grouped_map(n_groups=4, per_group=3, N=300)
    sel = lm.resample_texts(mm.matrix, 150, "ls", seed=3)
    scale = np.sqrt(sel.data["selection_count"].values / (150 * sel.data["selection_probability"].values))
    L = sel.values
    centred = L - (L * scale**2).sum(axis=1, keepdims=True) / np.sum(scale**2)
    Q = centred * scale
    Q -= Q.mean(axis=0)
    np.testing.assert_allclose(map_features(lm.ModelMap(sel)), Q, rtol=1e-9, atol=1e-8)
