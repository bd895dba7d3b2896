"""Shared fixtures and the hypothesis profiles (``HYPOTHESIS_PROFILE=ci`` in CI)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

import loglik_map as lm  # noqa: E402

#: The package of the 'io' extra that each storage format needs.
STORAGE_PACKAGES = {".nc": "h5netcdf", ".zarr": "zarr"}


def needs_storage(*suffixes: str) -> None:
    """Skip (the calling test, or a module at import) unless the 'io' extra can save to ``suffixes``.

    Run stores are Zarr; ``save``/``open_matrix`` use h5netcdf for ``.nc``. No suffix: both.
    """
    for suffix in suffixes or tuple(STORAGE_PACKAGES):
        package = STORAGE_PACKAGES[suffix]
        pytest.importorskip(package, reason=f"saving to {suffix} needs the 'io' extra ({package})")


def make_matrix(K: int = 5, N: int = 300, *, seed: int = 0, **kwargs) -> lm.LogLikelihoodMatrix:
    """A realistic-looking random matrix: per-text difficulty + per-model offset + model-specific noise."""
    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(257, 1025, size=N)
    difficulty = -n_bytes * rng.uniform(0.4, 0.8, size=N)
    values = difficulty[None, :] - rng.uniform(0, 50, size=(K, 1)) + rng.normal(scale=5.0, size=(K, N))
    return lm.LogLikelihoodMatrix(
        values,
        models=[f"m{i}" for i in range(K)],
        texts=[f"t{k}" for k in range(N)],
        n_bytes=n_bytes,
        **kwargs,
    )


@pytest.fixture
def matrix() -> lm.LogLikelihoodMatrix:
    return make_matrix(
        model_coords={"family": ["a", "a", "b", "b", "c"], "step": [0, 1000, 0, 1000, 0]},
        text_coords={"domain": np.array(["web", "code"] * 150, dtype=object)},
    )


@pytest.fixture(scope="session")
def markov_families() -> lm.synthetic.MarkovExample:
    """Three Markov-chain families of three models on 400 texts: a tree with known clades (the tree tests)."""
    return lm.synthetic.make_markov_example(n_families=3, members_per_family=3, n_texts=400, seed=3)
