"""A closed Markov chain's samples scored by open chains, with the exact KLs the placement targets.

The known answer for :func:`loglik_map.place_by_samples`: the closed chain ``q`` is only sampled;
open chains score the samples; ``KL(q‖p_i)`` is exact for chains (:meth:`MarkovChainModel.kl_divergence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .._units import LN2
from ..core._matrix import MODEL_DIM, LogLikelihoodMatrix
from ..errors import LoglikMapError
from ..texts import text_id
from ._markov import MarkovChainModel

__all__ = ["ClosedMarkovExample", "make_closed_markov_example"]


@dataclass(frozen=True)
class ClosedMarkovExample:
    """Samples of a closed chain scored by open chains, with the exact ``KL(q‖p_i)``.

    Attributes
    ----------
    matrix : LogLikelihoodMatrix
        Open chains × samples of the closed chain, nats (first character conditioning only);
        text coordinate ``sampled_from``; model coordinate ``spread``.
    exact_kl : xarray.DataArray
        Over ``model``: the exact ``KL(q‖p_i)`` in bits/byte, for the sampled lengths:
        ``Σ_k KL_{L_k}(q‖p_i) / (Σ_k L_k · ln 2)`` with ``KL_L`` the exact KL between texts of
        ``L`` characters (first character from ``q``'s stationary distribution).
    closed : MarkovChainModel
        The chain the texts were sampled from.
    models : tuple of MarkovChainModel
        The open chains, in the matrix's row order.
    """

    matrix: LogLikelihoodMatrix
    exact_kl: xr.DataArray
    closed: MarkovChainModel
    models: tuple[MarkovChainModel, ...]

    def exact_excess(self, reference: str) -> xr.DataArray:
        """Exact ``KL(q‖p_i) − KL(q‖p_reference)`` in bits/byte, over ``model``.

        Parameters
        ----------
        reference : str
            An open model's name.

        Returns
        -------
        xarray.DataArray
            What :func:`loglik_map.place_by_samples` estimates as ``kl_excess``.
        """
        return (self.exact_kl - self.exact_kl.sel({MODEL_DIM: reference})).rename("exact_excess")


def _log_likelihoods(models: Sequence[MarkovChainModel], texts: Sequence[str]) -> np.ndarray:
    """K × n log-likelihoods (nats), each text encoded once."""
    table = np.stack([m._log_transition for m in models])
    lookup = np.full(128, -1, dtype=np.int64)
    lookup[np.frombuffer(models[0].alphabet.encode("ascii"), dtype=np.uint8)] = np.arange(len(models[0].alphabet))
    out = np.empty((len(models), len(texts)))
    for k, text in enumerate(texts):
        c = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]  # the texts are the closed chain's samples
        out[:, k] = table[:, c[:-1], c[1:]].sum(axis=1)
    return out


def make_closed_markov_example(n_open: int = 5, *, n_samples: int = 300, min_length: int = 64,
                               max_length: int = 256, spreads: Sequence[float] | None = None,
                               alphabet: str = "abcdefgh ", seed: int | np.random.Generator | None = 0,
                               closed: MarkovChainModel | None = None,
                               models: Sequence[MarkovChainModel] | None = None) -> ClosedMarkovExample:
    """Sample a closed chain, score the samples with open chains, and compute the exact KLs.

    Each open chain perturbs the closed chain's logits by ``spread`` × a random normal direction.

    Parameters
    ----------
    n_open : int, default 5
        Number of open chains (ignored when ``models`` is given).
    n_samples : int, default 300
        Texts sampled from the closed chain.
    min_length, max_length : int, default 64 and 256
        Uniform range of the texts' lengths in characters (= bytes).
    spreads : sequence of float, optional
        Logit perturbation of each open chain (default ``0.2 … 0.8``, evenly spaced).
    alphabet : str, default "abcdefgh "
        Distinct ASCII characters.
    seed : int or numpy.random.Generator, optional
        Seed or generator of the chains and the samples.
    closed, models : optional
        The closed chain and the open chains to use instead of random ones (then only the
        samples are drawn: repeated draws of one setting).

    Returns
    -------
    ClosedMarkovExample
        The open chains' log-likelihoods of the samples (nats) and the exact ``KL(q‖p_i)``
        (bits/byte).
    """
    if not 2 <= min_length <= max_length:
        raise LoglikMapError("need 2 ≤ min_length ≤ max_length")
    if n_samples < 1:
        raise LoglikMapError(f"n_samples must be positive, got {n_samples}")
    rng = np.random.default_rng(seed)
    if closed is None:
        closed = MarkovChainModel.from_logits(alphabet, rng.normal(size=(len(alphabet), len(alphabet))), "closed")
    S = len(closed.alphabet)
    if models is None:
        if n_open < 2:
            raise LoglikMapError(f"need at least 2 open models, got {n_open}")
        spread = np.linspace(0.2, 0.8, n_open) if spreads is None else np.asarray(spreads, dtype=float)
        if spread.shape != (n_open,):
            raise LoglikMapError(f"{spread.size} spreads for {n_open} open models")
        base = np.log(closed.transition)
        models = [MarkovChainModel.from_logits(closed.alphabet, base + s * rng.normal(size=(S, S)), f"open{i}")
                  for i, s in enumerate(spread)]
    else:
        spread = np.full(len(models), np.nan)
    models = tuple(models)
    if any(m.alphabet != closed.alphabet for m in models):
        raise LoglikMapError("the open chains and the closed chain must share one alphabet")
    lengths = rng.integers(min_length, max_length + 1, size=n_samples)
    texts = closed.sample(n_samples, lengths, seed=rng)
    ids = [text_id(t) for t in texts]
    if len(set(ids)) != len(ids):
        raise LoglikMapError("sampled texts repeat; use longer texts (or collect them with TextSet.from_samples, "
                             "which counts repeats)")
    matrix = LogLikelihoodMatrix(
        _log_likelihoods(models, texts), models=[m.name for m in models], texts=ids, n_bytes=lengths,
        model_coords={"spread": spread}, text_coords={"sampled_from": np.full(n_samples, closed.name, dtype=object)},
        attrs={"source": "loglik_map.synthetic.make_closed_markov_example", "convention": "reference"},
    )
    exact = []
    for m in models:
        by_length = closed._kl_by_length(m, None, max_length)
        exact.append(by_length[lengths].sum() / (lengths.sum() * LN2))
    exact_kl = xr.DataArray(np.array(exact), dims=(MODEL_DIM,), coords={MODEL_DIM: [m.name for m in models]},
                            attrs={"units": "bits/byte", "meaning": "exact KL(q||p_i) for the sampled lengths"},
                            name="exact_kl")
    return ClosedMarkovExample(matrix=matrix, exact_kl=exact_kl, closed=closed, models=models)
