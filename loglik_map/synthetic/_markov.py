"""Synthetic ground truth: Markov-chain "language models" with exact log-likelihoods and exact KL.

A first-order Markov chain over a small alphabet is a language model whose log-probability of
any text, and whose KL divergence from another chain, can be computed exactly. Texts sampled
from a source chain and scored by nearby chains give a log-likelihood matrix for which the true
KL between every pair of models is known — a known-answer test for the whole pipeline.
Scoring follows :ref:`method-loglik`: the first character is conditioning only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .._units import nats_per_bit_per_byte
from ..core._matrix import MODEL_DIM, LogLikelihoodMatrix
from ..core._modelmap import PAIR_DIM
from ..errors import LoglikMapError
from ..texts import text_id

__all__ = ["MarkovChainModel", "MarkovExample", "make_markov_example"]


@dataclass(frozen=True)
class MarkovChainModel:
    """A first-order Markov chain over the characters of ``alphabet``.

    Parameters
    ----------
    alphabet : str
        Distinct ASCII characters (one byte each, so a text's byte length is its length).
    transition : array_like, shape (S, S)
        Row-stochastic matrix, ``transition[a, b] = p(next = b | current = a)``, all > 0.
    name : str
        Model name used as the matrix label.
    """

    alphabet: str
    transition: np.ndarray
    name: str = "markov"
    _log_transition: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        P = np.array(self.transition, dtype=np.float64)
        S = len(self.alphabet)
        if len(set(self.alphabet)) != S or not all(ord(c) < 128 for c in self.alphabet):
            raise LoglikMapError("alphabet must be distinct ASCII characters")
        if P.shape != (S, S):
            raise LoglikMapError(f"transition must be {S} × {S} for a {S}-letter alphabet, got {P.shape}")
        if np.any(P <= 0) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-12):
            raise LoglikMapError("transition rows must be positive and sum to 1")
        object.__setattr__(self, "transition", P)
        object.__setattr__(self, "_log_transition", np.log(P))

    @classmethod
    def from_logits(cls, alphabet: str, logits: np.ndarray, name: str = "markov") -> MarkovChainModel:
        """Chain whose rows are ``softmax(logits[a])``.

        Parameters
        ----------
        alphabet : str
            Distinct ASCII characters.
        logits : array_like, shape (S, S)
            Unnormalised log-probabilities of the next character given the current one.
        name : str, default "markov"
            Model name used as the matrix label.

        Returns
        -------
        MarkovChainModel
        """
        z = np.asarray(logits, dtype=np.float64)
        z = z - z.max(axis=1, keepdims=True)
        P = np.exp(z)
        return cls(alphabet, P / P.sum(axis=1, keepdims=True), name)

    def stationary(self) -> np.ndarray:
        """Stationary distribution π of the chain (π P = π).

        Returns
        -------
        numpy.ndarray
            Shape ``(S,)``, sums to 1.
        """
        w, v = np.linalg.eig(self.transition.T)
        pi = np.real(v[:, np.argmin(np.abs(w - 1.0))])
        return pi / pi.sum()

    def sample(
        self, n_texts: int, lengths: int | Sequence[int] | np.ndarray, *, seed: int | np.random.Generator | None = None
    ) -> list[str]:
        """Sample texts; the first character from :meth:`stationary`.

        Parameters
        ----------
        n_texts : int
            Number of texts.
        lengths : int or sequence of int
            Length (≥ 2 characters) of every text, or one length per text.
        seed : int or numpy.random.Generator, optional
            Seed or generator.

        Returns
        -------
        list of str
            The sampled texts.
        """
        rng = np.random.default_rng(seed)
        lens = np.broadcast_to(np.asarray(lengths, dtype=np.int64), (n_texts,))
        if np.any(lens < 2):
            raise LoglikMapError("texts need at least 2 characters (the first is conditioning only)")
        cum = np.cumsum(self.transition, axis=1)
        cum[:, -1] = 1.0
        pi = self.stationary()
        M = int(lens.max())
        codes = np.empty((n_texts, M), dtype=np.int64)
        codes[:, 0] = rng.choice(len(self.alphabet), size=n_texts, p=pi)
        u = rng.random((n_texts, M))
        for m in range(1, M):
            codes[:, m] = (u[:, m, None] > cum[codes[:, m - 1]]).sum(axis=1)
        letters = np.array(list(self.alphabet))
        return ["".join(letters[codes[t, : lens[t]]]) for t in range(n_texts)]

    def _encode(self, text: str) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.alphabet)}
        try:
            return np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as err:
            raise LoglikMapError(f"character {err.args[0]!r} is not in the alphabet {self.alphabet!r}") from None

    def log_likelihood(self, texts: Sequence[str]) -> np.ndarray:
        """The log-likelihood log p(x) of each text, the first character being conditioning only.

        Parameters
        ----------
        texts : sequence of str
            Texts over the chain's alphabet.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts),)``, nats.
        """
        out = np.empty(len(texts))
        for t, text in enumerate(texts):
            c = self._encode(text)
            out[t] = self._log_transition[c[:-1], c[1:]].sum()
        return out

    def kl_divergence(self, other: MarkovChainModel, length: int, start: np.ndarray | None = None) -> float:
        """Exact KL(self ‖ other) in nats between the distributions of texts of ``length`` characters.

        The first character is drawn from ``start`` (default: this chain's stationary
        distribution) and is conditioning only, so
        ``KL = Σ_{m=0}^{length-2} Σ_s μ_m(s) KL(P_self[s] ‖ P_other[s])`` with ``μ_0 = start``,
        ``μ_{m+1} = μ_m P_self``.

        Parameters
        ----------
        other : MarkovChainModel
            The second chain (same alphabet).
        length : int
            Characters per text (≥ 2).
        start : array_like, optional
            Distribution of the first character, shape ``(S,)``.

        Returns
        -------
        float
            KL divergence in nats per text.
        """
        if other.alphabet != self.alphabet:
            raise LoglikMapError("the two chains have different alphabets")
        if length < 2:
            raise LoglikMapError("texts need at least 2 characters (the first is conditioning only)")
        return float(self._kl_by_length(other, start, length)[length])

    def _kl_by_length(self, other: MarkovChainModel, start: np.ndarray | None, max_length: int = 0) -> np.ndarray:
        row_kl = np.sum(self.transition * (self._log_transition - other._log_transition), axis=1)
        mu = self.stationary() if start is None else np.asarray(start, dtype=np.float64)
        n = max(max_length, 2) + 1
        out = np.zeros(n)
        for length in range(2, n):
            out[length] = out[length - 1] + mu @ row_kl
            mu = mu @ self.transition
        return out


@dataclass(frozen=True)
class MarkovExample:
    """A generated log-likelihood matrix with its exact KL divergences.

    Attributes
    ----------
    matrix : LogLikelihoodMatrix
        Models × texts, nats; model coordinates ``family`` and ``member``.
    true_kl : xarray.DataArray
        Dims ``("model", "model_")``: exact symmetrised KL ½(KL(a‖b) + KL(b‖a)) in bits/byte,
        averaged over the sampled texts' lengths — what the map's estimator approximates (its SE
        and intervals are about its own population value, which can differ from this).
    models : tuple of MarkovChainModel
        The chains that scored the texts, in the matrix's model order.
    source : MarkovChainModel
        The chain the texts were sampled from.
    """

    matrix: LogLikelihoodMatrix
    true_kl: xr.DataArray
    models: tuple[MarkovChainModel, ...]
    source: MarkovChainModel


def make_markov_example(
    n_families: int = 3,
    members_per_family: int = 3,
    *,
    n_texts: int = 2000,
    min_length: int = 256,
    max_length: int = 1024,
    family_spread: float = 0.3,
    member_spread: float = 0.05,
    alphabet: str = "abcdefgh ",
    seed: int | np.random.Generator | None = 0,
) -> MarkovExample:
    """Generate Markov-chain model families, sample texts from a source chain, and score them exactly.

    Each family perturbs the source chain's logits by ``family_spread`` × a random direction;
    each member perturbs its family by ``member_spread`` × another. Texts have uniform random
    lengths in ``[min_length, max_length]`` (the chunk range of :ref:`method-loglik` by default).

    Parameters
    ----------
    n_families : int, default 3
        Number of model families.
    members_per_family : int, default 3
        Models per family.
    n_texts : int, default 2000
        Texts sampled from the source chain.
    min_length, max_length : int, default 256 and 1024
        Range of the texts' lengths in characters (= bytes).
    family_spread, member_spread : float, default 0.3 and 0.05
        Scale of the logit perturbations of families and of members within a family.
    alphabet : str, default "abcdefgh "
        Distinct ASCII characters.
    seed : int or numpy.random.Generator, optional
        Seed or generator (default 0: the same example every time).

    Returns
    -------
    MarkovExample
        The matrix, the exact KLs (bits/byte), the chains and the source.
    """
    if n_families < 1 or members_per_family < 1 or n_families * members_per_family < 2:
        raise LoglikMapError("need at least two models")
    if not 2 <= min_length <= max_length:
        raise LoglikMapError("need 2 ≤ min_length ≤ max_length")
    rng = np.random.default_rng(seed)
    S = len(alphabet)
    base_logits = rng.normal(scale=1.0, size=(S, S))
    source = MarkovChainModel.from_logits(alphabet, base_logits, "source")
    models: list[MarkovChainModel] = []
    family, member = [], []
    for f in range(n_families):
        fam_logits = base_logits + family_spread * rng.normal(size=(S, S))
        for m in range(members_per_family):
            logits = fam_logits + member_spread * rng.normal(size=(S, S))
            models.append(MarkovChainModel.from_logits(alphabet, logits, f"family{f}-member{m}"))
            family.append(f"family{f}")
            member.append(m)
    lengths = rng.integers(min_length, max_length + 1, size=n_texts)
    texts = source.sample(n_texts, lengths, seed=rng)
    ids = [text_id(t) for t in texts]
    if len(set(ids)) != len(ids):  # pragma: no cover - astronomically unlikely for these lengths
        raise LoglikMapError("sampled texts repeat; use longer texts")
    values = np.vstack([m.log_likelihood(texts) for m in models])
    matrix = LogLikelihoodMatrix(
        values,
        models=[m.name for m in models],
        texts=ids,
        n_bytes=lengths,
        model_coords={"family": family, "member": member},
        attrs={"source": "loglik_map.synthetic.make_markov_example", "convention": "reference"},
    )
    start = source.stationary()
    K = len(models)
    by_length = np.zeros((K, K, max_length + 1))
    for i in range(K):
        for j in range(K):
            if i != j:
                by_length[i, j] = models[i]._kl_by_length(models[j], start, max_length)
    per_text = by_length[:, :, lengths].mean(axis=2)
    true = 0.5 * (per_text + per_text.T) / nats_per_bit_per_byte(matrix.mean_bytes)
    names = [m.name for m in models]
    true_kl = xr.DataArray(true, dims=(MODEL_DIM, PAIR_DIM), coords={MODEL_DIM: names, PAIR_DIM: names},
                           attrs={"units": "bits/byte"}, name="true_kl")
    return MarkovExample(matrix=matrix, true_kl=true_kl, models=tuple(models), source=source)
