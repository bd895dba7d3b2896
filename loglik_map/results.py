"""Every type ``loglik_map`` returns, documented in one place.

Users never construct these; they get them back from a function or method and read their
fields. Tables come back as :class:`pandas.DataFrame` and arrays as :mod:`xarray` objects
(their dims, units and attrs are described by the method that returns them); the small fixed
results are the frozen dataclasses below.

* :class:`KLEstimate`: KL ± SE of one pair (:meth:`ModelMap.compare <loglik_map.ModelMap.compare>`);
* :class:`ConfidenceInterval`: ``confidence_interval()`` of every estimate here;
* :class:`KLDifference`: a paired difference of two KLs on the same texts
  (:func:`~loglik_map.closer`, :func:`~loglik_map.kl_difference`);
* :class:`ModelProjection`: new models placed on a map
  (:meth:`ModelMap.project <loglik_map.ModelMap.project>`);
* :class:`ModelTree`: a clustering tree with AU/BP p-values of its clades
  (:meth:`ModelMap.tree <loglik_map.ModelMap.tree>`);
* :class:`PowerLawFit`: :func:`~loglik_map.fit_power_law` and the trajectory fits;
* :class:`HolderEstimate`: α = c_q / c_w (:func:`~loglik_map.holder_exponent`);
* :class:`BootstrapEstimate`: bootstrap intervals of exponents (:func:`~loglik_map.exponent_intervals`);
* :class:`PreprocessingResult`: :func:`~loglik_map.preprocess_pretraining`;
* :class:`SpiralPeriod`: :func:`loglik_map.dynamics.spiral_period`;
* :class:`ResamplingStability`: :func:`~loglik_map.stats.text_resampling_stability`;
* :class:`TextBudget`: the texts a target KL SE needs (:func:`~loglik_map.texts_needed`);
* :class:`MarkovExample`: a matrix with its exact KLs (:func:`~loglik_map.make_markov_example`);
* :class:`SampleComparison`: a closed model's distance to two open models, from its samples
  (:func:`loglik_map.core.closer_by_samples`);
* :class:`ClosedMarkovExample`: samples of a closed chain with the exact KLs
  (:func:`loglik_map.synthetic.make_closed_markov_example`);
* :class:`RunSummary`: what a scoring run did (:func:`~loglik_map.score_models`);
* :class:`DemoResult`: :func:`loglik_map.demo.run_demo`.

``RunSummary`` and ``DemoResult`` are imported on first use (their modules belong to the
scoring and demo layers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core._closed_models import SampleComparison
from .core._model_tree import ModelTree
from .core._paired import KLDifference
from .core._projection import ModelProjection
from .core._results import ConfidenceInterval, KLEstimate
from .dynamics import BootstrapEstimate, HolderEstimate, PowerLawFit, PreprocessingResult, SpiralPeriod
from .stats import ResamplingStability, TextBudget
from .synthetic import ClosedMarkovExample, MarkovExample

if TYPE_CHECKING:
    from .demo._run import DemoResult
    from .scoring._runs import RunSummary

__all__ = [
    "BootstrapEstimate",
    "ClosedMarkovExample",
    "ConfidenceInterval",
    "DemoResult",
    "HolderEstimate",
    "KLDifference",
    "KLEstimate",
    "MarkovExample",
    "ModelProjection",
    "ModelTree",
    "PowerLawFit",
    "PreprocessingResult",
    "ResamplingStability",
    "RunSummary",
    "SampleComparison",
    "SpiralPeriod",
    "TextBudget",
]

_LAZY = {"RunSummary": "loglik_map.scoring._runs", "DemoResult": "loglik_map.demo._run"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
