"""Fast kernels against direct evaluation, including near-identical models (issue #2 accuracy targets)."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.core._kernels import pairwise_kl_se
from loglik_map.core._kernels._blas import pairwise_kl_se_blas
from loglik_map.core._kernels._direct import pairs_kl_se_numpy

BACKENDS = ["numpy", "numba", "blas", "auto"]


def _coords_with_near_duplicates(K=40, N=3000, seed=1):
    """Map coordinates where some models differ from others by KL ~ 1e-6 bits/byte."""
    rng = np.random.default_rng(seed)
    L = -600 + rng.normal(scale=40.0, size=(K, N))
    for i in range(0, K, 4):  # every 4th model gets a near twin
        L[i + 1] = L[i] + rng.normal(scale=0.04, size=N)  # var/2/(B ln2) ≈ 1e-6 bits/byte at B≈970
    m = lm.LogLikelihoodMatrix(L, models=[f"m{i}" for i in range(K)], texts=[f"t{k}" for k in range(N)],
                               n_bytes=np.full(N, 970))
    return lm.ModelMap(m).points.values


def _direct_all_pairs(X):
    K = X.shape[0]
    kl = np.zeros((K, K))
    se = np.zeros((K, K))
    for i in range(K):
        for j in range(K):
            if i != j:
                d = X[i] - X[j]
                kl[i, j] = np.sum(d**2)
                se[i, j] = np.sqrt(np.sum(d**4) - kl[i, j] ** 2 / X.shape[1])
    return kl, se


@pytest.fixture(scope="module")
def near_dupes():
    X = _coords_with_near_duplicates()
    return X, _direct_all_pairs(X)


@pytest.mark.parametrize("backend", BACKENDS)
def test_entrywise_accuracy_against_direct_formulas(near_dupes, backend):
    X, (kl_ref, se_ref) = near_dupes
    got = pairwise_kl_se(X, backend=backend)
    off = ~np.eye(X.shape[0], dtype=bool)
    assert kl_ref[0, 1] < 3e-6  # the test really contains near-identical pairs
    rel_kl = np.abs(got.kl[off] - kl_ref[off]) / kl_ref[off]
    rel_se = np.abs(got.se[off] - se_ref[off]) / se_ref[off]
    assert rel_kl.max() <= 1e-8
    assert rel_se.max() <= 1e-5
    assert np.all(np.diag(got.kl) == 0.0) and np.all(np.diag(got.se) == 0.0)
    assert np.array_equal(got.kl, got.kl.T) and np.array_equal(got.se, got.se.T)


def test_blas_guard_sends_near_identical_pairs_to_direct_evaluation(near_dupes):
    X, _ = near_dupes
    refined: list[tuple[int, int]] = []

    def refine(X_, a, b):
        refined.extend(zip(a.tolist(), b.tolist()))
        return pairs_kl_se_numpy(X_, a, b)

    pairwise_kl_se_blas(X, refine)
    twins = {(i, i + 1) for i in range(0, X.shape[0], 4)}
    assert twins <= set(refined)
    # far pairs are left to BLAS: the guard is not simply "refine everything"
    assert len(refined) < X.shape[0] * (X.shape[0] - 1) / 2 / 4


def test_gram_formula_without_the_guard_would_miss_the_target(near_dupes):
    """Shows why the guard exists: the unguarded Gram-expansion SE of a near twin is far off 1e-5."""
    X, (_, se_ref) = near_dupes
    a, b = X[0], X[1]
    s4 = np.sum(a**4) + np.sum(b**4) - 4 * (a**3 @ b + a @ b**3) + 6 * (a**2 @ b**2)
    kl = np.sum(a * a) + np.sum(b * b) - 2 * (a @ b)
    se_gram = np.sqrt(max(s4 - kl**2 / X.shape[1], 0.0))
    assert abs(se_gram - se_ref[0, 1]) / se_ref[0, 1] > 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_models_have_zero_kl_and_se(backend):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 50))
    X[3] = X[1]
    got = pairwise_kl_se(X, backend=backend)
    assert got.kl[1, 3] == 0.0 and got.se[1, 3] == 0.0


def test_unknown_backend_is_an_error():
    with pytest.raises(lm.LoglikMapError, match="unknown kernel backend"):
        pairwise_kl_se(np.zeros((2, 3)), backend="cuda")


def test_set_options_switches_the_default_backend():
    X = np.random.default_rng(0).normal(size=(4, 10))
    assert pairwise_kl_se(X).backend == "blas"
    with lm.set_options(kernel_backend="numba"):
        assert pairwise_kl_se(X).backend == "numba"
    assert pairwise_kl_se(X).backend == "blas"
    with pytest.raises(lm.LoglikMapError, match="invalid value"):
        lm.set_options(kernel_backend="gpu")


@pytest.mark.parametrize("backend", ["numpy", "numba", "blas"])
def test_overflow_is_refused_naming_the_rows_not_returned_as_inf(backend):
    from loglik_map.core._kernels import NonFiniteKLError, pair_kl_se, pairs_kl_se

    X = np.random.default_rng(0).normal(size=(4, 50))
    X[2, 7] = 1e200  # its square overflows float64
    with pytest.raises(NonFiniteKLError, match="between rows [0-3] and [0-3]") as info:
        pairwise_kl_se(X, backend=backend)
    assert 2 in info.value.rows
    with pytest.raises(NonFiniteKLError, match="between rows 2 and 3"):
        pairs_kl_se(X, np.array([0, 2]), np.array([1, 3]), backend=backend)
    with pytest.raises(lm.LoglikMapError, match="not finite"):
        pair_kl_se(X[0], X[2])
    assert np.isfinite(pairs_kl_se(X, np.array([0]), np.array([1]), backend=backend)[0]).all()
