"""Numba direct evaluation of KL and SE for pairs whose rows lie in two different arrays.

The blocked kernels (:mod:`loglik_map.core.kernels.blocks`) hold a block of rows ``A`` and a
block ``B``; this evaluates listed pairs ``(A[ia[p]], B[ib[p]])`` without stacking the blocks.
Imported lazily (compiled once, cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._numba import _pair_two_pass

__all__ = ["cross_pairs_kl_se_numba"]


@njit(parallel=True, cache=True)
def cross_pairs_kl_se_numba(A, B, ia, ib):
    """KL and SE of the pairs ``(A[ia[p]], B[ib[p]])`` (direct, two-pass), in parallel over pairs."""
    P = ia.shape[0]
    kl = np.empty(P)
    se = np.empty(P)
    for p in prange(P):
        kl[p], se[p] = _pair_two_pass(A[ia[p]], B[ib[p]])
    return kl, se
