"""Invariants of weighted maps: unit weights change nothing; a text of weight 2 counts as the text twice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import loglik_map as lm

from .strategies import matrices

pytestmark = pytest.mark.filterwarnings("ignore::loglik_map.LoglikMapWarning")  # the strategy's per-token-mean look


def _weighted(m: lm.LogLikelihoodMatrix, w: np.ndarray) -> lm.LogLikelihoodMatrix:
    return lm.LogLikelihoodMatrix.from_dataarray(m.data.assign_coords(text_weight=("text", w)))


@given(matrices(min_texts=3))
def test_unit_weights_are_the_unweighted_map(m):
    a, b = lm.ModelMap(m), lm.ModelMap(_weighted(m, np.ones(m.n_texts)))
    np.testing.assert_allclose(b.kl().values, a.kl().values, rtol=1e-9, atol=1e-12)
    assert b.mean_bytes == a.mean_bytes


@given(matrices(min_texts=3), st.data())
def test_integer_weights_are_repeated_texts(m, data):
    """Weights c_s (scaled by N_u / Σc to average 1) give the map of the texts repeated c_s times."""
    counts = np.array(data.draw(st.lists(st.integers(1, 4), min_size=m.n_texts, max_size=m.n_texts)))
    weights = counts * m.n_texts / counts.sum()
    idx = np.repeat(np.arange(m.n_texts), counts)
    repeated = lm.LogLikelihoodMatrix(m.values[:, idx], models=m.models, texts=[f"r{k}" for k in range(idx.size)],
                                      n_bytes=m.n_bytes[idx])
    a, b = lm.ModelMap(repeated), lm.ModelMap(_weighted(m, weights))
    np.testing.assert_allclose(b.kl().values, a.kl().values, rtol=1e-8, atol=1e-10)
    assert np.isclose(b.mean_bytes, a.mean_bytes)
