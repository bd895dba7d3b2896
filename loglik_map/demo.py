"""The worked run behind ``make demo`` / ``loglik-map demo``.

For now it maps a generated example (Markov-chain models with exactly known KL, see
:mod:`loglik_map.synthetic`) and prints the text-entropy estimate and a KL table with standard
errors beside the exact values. Every number is computed.
"""

from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from .modelmap import ModelMap
from .synthetic import make_markov_example

__all__ = ["run_demo"]


def run_demo(*, n_texts: int = 2000, random_state: int = 0, out: TextIO | None = None) -> ModelMap:
    """Build a map of generated Markov-chain models and print its KL table with SEs.

    Parameters
    ----------
    n_texts : int
        Number of generated texts (256–1024 bytes each).
    random_state : int
        Seed of the generated example.
    out : file-like, optional
        Where to print (default standard output).

    Returns
    -------
    ModelMap
        The map, for further use.
    """
    out = sys.stdout if out is None else out
    example = make_markov_example(n_texts=n_texts, random_state=random_state)
    matrix = example.matrix
    mm = ModelMap(matrix)
    kl = mm.kl()
    se = mm.kl_se()
    names = list(matrix.models)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("loglik_map demo — a model map of generated Markov-chain language models")
    p(f"  {matrix.n_models} models (3 families × 3 members) scored on {matrix.n_texts} texts, "
      f"mean {matrix.mean_bytes:.1f} bytes/text")
    ce = matrix.cross_entropy()
    best = str(ce.idxmin().item())
    p(f"  text-entropy estimate: {matrix.entropy():.4f} bits/byte (best model: {best})")
    p("")
    p("KL divergence, bits/byte: estimate ± SE (exact value); selected pairs")
    p(f"  {'model a':<18} {'model b':<18} {'estimate':>10} {'± SE':>9} {'exact':>10} {'z':>6}")
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            rows.append((names[i], names[j]))
    within = [r for r in rows if r[0].split("-")[0] == r[1].split("-")[0]][:3]
    across = [r for r in rows if r[0].split("-")[0] != r[1].split("-")[0]][:3]
    for a, b in within + across:
        est = float(kl.sel(model=a, model_=b))
        s = float(se.sel(model=a, model_=b))
        exact = float(example.true_kl.sel(model=a, model_=b))
        p(f"  {a:<18} {b:<18} {est:>10.5f} {s:>9.5f} {exact:>10.5f} {(est - exact) / s:>6.2f}")
    iu = np.triu_indices(len(names), 1)
    z = (kl.values[iu] - example.true_kl.values[iu]) / se.values[iu]
    p("")
    p(f"  all {iu[0].size} pairs: median |estimate − exact| / SE = {np.median(np.abs(z)):.2f}")
    p("  z = (estimate − exact) / SE. The estimator is the second-order (Fisher) approximation to KL")
    p("  around the distribution the texts come from; here they come from a source chain some way")
    p("  from every model, so a bias of a few SE remains besides the sampling error the SE measures.")
    return mm
