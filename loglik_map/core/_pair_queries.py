"""The model map's KL/SE queries on top of the kernels: text-count checks and errors that name the models.

The kernels (:mod:`loglik_map.core._kernels`) compute KL and SE from the map's points; these
helpers check there are enough texts for the estimate asked for, and turn a kernel's overflow
into an error naming the two models.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import LoglikMapError, UnreliableEstimateWarning
from ._kernels import NonFiniteKLError, PairwiseKL, pairs_kl_se, pairwise_kl_se
from ._results import MIN_TEXTS_FOR_SE

__all__ = ["MIN_TEXTS_FOR_SE", "all_pairs", "check_texts", "some_pairs"]



def check_texts(n: int, with_se: bool) -> None:
    """Refuse KL from fewer than 2 texts and SE from fewer than 3; warn below :data:`MIN_TEXTS_FOR_SE`.

    Parameters
    ----------
    n : int
        Number of texts N of the map.
    with_se : bool
        Whether a standard error is asked for.
    """
    if n < 2:
        raise LoglikMapError(f"a KL estimate needs at least 2 texts and this map has {n}: with one text every "
                             "model's centred log-likelihood is 0, so every KL would read 0. Score more texts")
    if not with_se:
        return
    if n < 3:
        raise LoglikMapError(f"a standard error needs at least 3 texts and this map has {n}: with 2 texts it is 0 "
                             f"by construction. Score more texts (at least {MIN_TEXTS_FOR_SE} for an SE to be "
                             "read as usual), or ask for kl() alone")
    if n < MIN_TEXTS_FOR_SE:
        warnings.warn(f"standard errors from only {n} texts: below {MIN_TEXTS_FOR_SE} texts the KL estimate's "
                      "sampling distribution is too skewed (and the SE itself too noisy) for KL ± z·SE to hold "
                      "its stated coverage; score more texts", UnreliableEstimateWarning, stacklevel=4)


def _non_finite(err: NonFiniteKLError, labels: np.ndarray, labels_b: np.ndarray | None = None) -> LoglikMapError:
    i, j = err.rows or (0, 0)  # the kernels name the rows whenever they see the whole matrix
    b = labels if labels_b is None else labels_b
    return LoglikMapError(f"KL between models {str(labels[i])!r} and {str(b[j])!r}: {err.reason}")


def all_pairs(X: np.ndarray, backend: str | None, labels: np.ndarray) -> PairwiseKL:
    """KL and SE of every pair of rows of ``X`` (bits/byte); an overflow names the two models."""
    try:
        return pairwise_kl_se(X, backend=backend)
    except NonFiniteKLError as err:
        raise _non_finite(err, labels) from None


def some_pairs(X: np.ndarray, ia: np.ndarray, ib: np.ndarray, backend: str | None,
               labels: np.ndarray, other: np.ndarray | None = None,
               other_labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """KL and SE of the row pairs ``(X[ia[k]], other[ib[k]])`` (bits/byte; ``other`` defaults to ``X``).

    ``labels`` name the rows of ``X`` and ``other_labels`` those of ``other`` (default ``labels``)
    in the error an overflow raises.
    """
    try:
        return pairs_kl_se(X, ia, ib, backend=backend, other=other)
    except NonFiniteKLError as err:
        raise _non_finite(err, labels, other_labels) from None
