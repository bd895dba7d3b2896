"""Synthetic ground truth: Markov-chain language models with exact KL, fractional Brownian paths, Hölder maps.

Known answers for every estimator: ``_markov`` gives log-likelihood matrices whose true KLs
are known exactly, ``_paths`` paths with known diffusion and Hölder exponents;
:func:`make_zoo_like_matrix` a matrix shaped like a model zoo (runs, layers, quantized copies, children).
"""

from __future__ import annotations

from ._closed import ClosedMarkovExample, make_closed_markov_example
from ._markov import MarkovChainModel, MarkovExample, make_markov_example
from ._paths import TakagiLandsberg, fbm, fractional_gaussian_noise, takagi_landsberg
from ._zoo_like import make_zoo_like_matrix

__all__ = ["ClosedMarkovExample", "MarkovChainModel", "MarkovExample", "TakagiLandsberg", "fbm",
           "fractional_gaussian_noise", "make_closed_markov_example", "make_markov_example", "make_zoo_like_matrix",
           "takagi_landsberg"]
