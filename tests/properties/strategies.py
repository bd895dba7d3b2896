"""Hypothesis strategies for log-likelihood matrices."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loglik_map as lm


@st.composite
def matrices(draw, min_models: int = 2, max_models: int = 7, min_texts: int = 2, max_texts: int = 60):
    """LogLikelihoodMatrix with values in [-3000, 0] nats and byte lengths in [1, 2048]."""
    K = draw(st.integers(min_models, max_models))
    N = draw(st.integers(min_texts, max_texts))
    values = draw(hnp.arrays(np.float64, (K, N), elements=st.floats(-3000.0, 0.0, allow_nan=False, allow_infinity=False)))
    n_bytes = draw(hnp.arrays(np.int64, (N,), elements=st.integers(1, 2048)))
    return lm.LogLikelihoodMatrix(values, models=[f"m{i}" for i in range(K)], texts=[f"t{k}" for k in range(N)],
                                  n_bytes=n_bytes)
