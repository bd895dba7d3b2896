"""Invariants of double-centering, KL and SE on generated matrices (SPEC §2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import loglik_map as lm
from loglik_map.core._kernels import pairwise_kl_se

from .strategies import matrices

# Algebraic invariants hold for any N; the SE's reliability below MIN_TEXTS_FOR_SE is tested elsewhere, and
# near-zero matrices are drawn on purpose (the per-token-mean hint they get is noise here).
pytestmark = [pytest.mark.filterwarnings("ignore::loglik_map.errors.UnreliableEstimateWarning"),
              pytest.mark.filterwarnings("ignore::loglik_map.LoglikMapWarning")]
#: An SE needs 3 texts (with 2 it is 0 by construction and refused).
with_se = matrices(min_texts=3)


def _scale(m):
    return float(np.max(np.abs(m.values))) + 1.0


@given(matrices())
def test_double_centering_rows_and_columns_sum_to_zero(m):
    Q = lm.core.double_center(m)
    tol = 1e-12 * _scale(m) * m.n_texts * m.n_models
    np.testing.assert_allclose(Q.sum("text"), 0.0, atol=tol)
    np.testing.assert_allclose(Q.sum("model"), 0.0, atol=tol)
    assert Q.dims == ("model", "text") and list(Q.model.values) == list(m.models)


@given(matrices(), st.data())
def test_row_and_column_shifts_change_nothing(m, data):
    K, N = m.shape
    row_shift = np.array(data.draw(st.lists(st.floats(-500, 500), min_size=K, max_size=K)))
    col_shift = np.array(data.draw(st.lists(st.floats(-500, 500), min_size=N, max_size=N)))
    shifted = m.values + row_shift[:, None] + col_shift[None, :]
    shifted -= max(shifted.max(), 0.0)  # one more shift (of everything) keeps the entries log-probabilities
    shifted = lm.LogLikelihoodMatrix(shifted, models=m.models, texts=m.texts, n_bytes=m.n_bytes)
    a, b = lm.ModelMap(m), lm.ModelMap(shifted)
    tol = 1e-11 * (_scale(m) + 1000)
    np.testing.assert_allclose(lm.core.double_center(shifted).values, lm.core.double_center(m).values, atol=tol)
    kl_a, kl_b = a.kl().values, b.kl().values
    scale = (_scale(m) + 1000) ** 2 / (m.n_texts * m.mean_bytes)
    np.testing.assert_allclose(kl_b, kl_a, atol=1e-10 * scale, rtol=1e-7)


@given(with_se)
def test_kl_symmetric_nonnegative_zero_diagonal(m):
    mm = lm.ModelMap(m)
    kl, se = mm.kl().values, mm.kl_se().values
    assert np.array_equal(kl, kl.T) and np.array_equal(se, se.T)
    assert np.all(kl >= 0) and np.all(se >= 0)
    assert np.all(np.diag(kl) == 0.0) and np.all(np.diag(se) == 0.0)


@given(with_se)
def test_pair_kl_and_se_equal_the_pair_alone_formulas(m):
    """KL = var(ℓa − ℓb)/(2 B̄ ln 2); SE from (d − mean d) of the pair alone (App. C, unscaled form)."""
    mm = lm.ModelMap(m)
    kl, se = mm.kl().values, mm.kl_se().values
    L, N, B = m.values, m.n_texts, m.mean_bytes
    c = B * np.log(2)
    for i in range(m.n_models):
        for j in range(m.n_models):
            d = (L[i] - L[j]) - np.mean(L[i] - L[j])
            kl_nats = np.sum(d**2) / (2 * N)
            se_nats = np.sqrt(max(np.sum(d**4) / (4 * N**2) - kl_nats**2 / N, 0.0))
            atol = 1e-9 * (np.var(L[i]) + np.var(L[j]) + 1.0) / c
            np.testing.assert_allclose(kl[i, j], kl_nats / c, rtol=1e-9, atol=atol)
            # the one-pass reference itself cancels when all |d_k| are nearly equal: allow its rounding
            atol_se = atol + np.sqrt(1e-13 * np.sum(d**4) / (4 * N**2)) / c
            np.testing.assert_allclose(se[i, j], se_nats / c, rtol=1e-6, atol=atol_se)


@given(with_se)
def test_kl_does_not_depend_on_the_other_models(m):
    mm = lm.ModelMap(m)
    pair = lm.ModelMap(m.isel(model=[0, 1]))
    np.testing.assert_allclose(pair.kl("m0", "m1"), mm.kl("m0", "m1"), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pair.kl_se("m0", "m1"), mm.kl_se("m0", "m1"), rtol=1e-6, atol=1e-12)


@given(with_se)
def test_bits_per_byte_is_nats_over_mean_bytes_ln2(m):
    mm = lm.ModelMap(m)
    c = m.mean_bytes * np.log(2)
    np.testing.assert_allclose(mm.kl(unit="nats").values, mm.kl().values * c, rtol=1e-12)
    np.testing.assert_allclose(mm.kl_se(unit="nats").values, mm.kl_se().values * c, rtol=1e-12)


@given(matrices(max_models=12, max_texts=80))
def test_all_backends_equal_the_numpy_reference(m):
    X = lm.ModelMap(m).points.values
    ref = pairwise_kl_se(X, backend="numpy")
    scale = np.max(np.sum(X**2, axis=1)) + 1e-300
    for backend in ("numba", "blas"):
        got = pairwise_kl_se(X, backend=backend)
        np.testing.assert_allclose(got.kl, ref.kl, rtol=1e-8, atol=1e-13 * scale)
        np.testing.assert_allclose(got.se, ref.se, rtol=1e-5, atol=1e-13 * scale)
        assert np.all(np.diag(got.kl) == 0) and np.all(np.diag(got.se) == 0)
