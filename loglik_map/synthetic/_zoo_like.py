"""A synthetic log-likelihood matrix shaped like a model zoo (:func:`make_zoo_like_matrix`): training runs with
checkpoints, logit-lens layers, quantized copies and fine-tuned children, with the coordinates the scorers
and the miniature zoo record. For the atlas's docs, tests and benchmarks at any size; its KLs are not
known exactly (use :func:`make_markov_example` for known answers).
"""

from __future__ import annotations

import numpy as np

from ..core._matrix import LogLikelihoodMatrix
from ..errors import LoglikMapError

__all__ = ["make_zoo_like_matrix"]

_SIZES = ("s", "m", "l", "xl")


def make_zoo_like_matrix(n_families: int = 2, runs_per_family: int = 3, n_checkpoints: int = 8, *, n_layers: int = 6,
                         n_children: int = 2, n_texts: int = 400, dim: int = 12,
                         seed: int | np.random.Generator | None = 0) -> LogLikelihoodMatrix:
    """A zoo-like matrix: runs of checkpoints, logit-lens layers, quantized copies, fine-tuned children.

    Every model is a point in a ``dim``-dimensional latent space; its log-likelihoods are a shared
    per-text baseline plus the point times random text loadings plus a little noise, so the map
    recovers the latent geometry. A run starts near a common initialisation and drifts, with
    shrinking steps, toward its family's optimum. The last checkpoint of each family's first run
    also has logit-lens rows (layer 0 far away, the last layer at the model), 8-bit and 4-bit copies
    (close to it) and ``n_children`` fine-tuned children (a step away).

    Parameters
    ----------
    n_families : int, default 2
        Model families (architectures).
    runs_per_family : int, default 3
        Training runs per family (sizes and seeds).
    n_checkpoints : int, default 8
        Checkpoints per run, at steps 0, 1, 2, 4, … (doubling).
    n_layers : int, default 6
        Logit-lens layers of each family's final model (0 for none).
    n_children : int, default 2
        Fine-tuned children of each family's final model.
    n_texts : int, default 400
        Texts, each 1,000 bytes.
    dim : int, default 12
        Latent dimension.
    seed : int or numpy.random.Generator, optional
        Seed (default 0: the same matrix every time).

    Returns
    -------
    LogLikelihoodMatrix
        Log-likelihoods in nats, with the model coordinates ``family``, ``size``, ``seed``, ``run``,
        ``step`` (NaN off runs), ``quantization``, ``layer`` (NaN off the logit lens),
        ``parent_model`` (the logit-lens model) and ``base_model`` (a child's parent).

    Examples
    --------
    >>> from loglik_map.synthetic import make_zoo_like_matrix
    >>> m = make_zoo_like_matrix(n_families=1, runs_per_family=2, n_checkpoints=3, n_layers=2, n_children=1)
    >>> m.n_models, m.n_texts
    (11, 400)
    """
    if min(n_families, runs_per_family, n_checkpoints) < 1 or min(n_layers, n_children) < 0 or n_texts < 3 or dim < 1:
        raise LoglikMapError("need at least one family, run and checkpoint, n_layers and n_children ≥ 0, "
                             "n_texts ≥ 3 and dim ≥ 1")
    rng = np.random.default_rng(seed)
    steps = [0] + [2**j for j in range(n_checkpoints - 1)]
    rows: list[np.ndarray] = []
    cols: dict[str, list] = {k: [] for k in ("model", "family", "size", "seed", "run", "step", "quantization", "layer",
                                             "parent_model", "base_model")}

    def add(point: np.ndarray, name: str, family: str, size: str, run_seed: int, run: str, step: float = np.nan,
            quantization: str = "none", layer: float = np.nan, parent: str = "", base: str = "") -> None:
        rows.append(point)
        for key, value in zip(cols, (name, family, size, float(run_seed), run, float(step), quantization, float(layer),
                                     parent, base)):
            cols[key].append(value)

    init = rng.normal(scale=3.0, size=dim)
    for f in range(n_families):
        family = f"fam{f}"
        optimum = rng.normal(scale=4.0, size=dim)
        for r in range(runs_per_family):
            size, run_seed = _SIZES[r % len(_SIZES)], r // len(_SIZES)
            run = f"{family}-{size}-seed{run_seed}"
            target = optimum + rng.normal(scale=0.6, size=dim)
            z = init + rng.normal(scale=0.3, size=dim)
            for c, step in enumerate(steps):
                if c:
                    z = z + 0.45 * (target - z) + rng.normal(scale=0.25 / np.sqrt(c), size=dim)
                add(z.copy(), f"{run}@{step}", family, size, run_seed, run, step)
            if r:
                continue
            final = f"{run}@{steps[-1]}"
            far = rng.normal(scale=5.0, size=dim)
            for layer in range(n_layers):
                w = (layer + 1) / n_layers
                add((1 - w) * far + w * z + rng.normal(scale=0.1, size=dim), f"{final}@layer{layer}", family, size,
                    run_seed, run, layer=layer, parent=final)
            for q, spread in (("8bit", 0.02), ("4bit", 0.08)):
                add(z + rng.normal(scale=spread, size=dim), f"{final}[{q}]", family, size, run_seed, run, quantization=q)
            for child in range(n_children):
                add(z + rng.normal(scale=0.5, size=dim), f"{run}-ft{child}", f"{family}-finetuned", size, run_seed, run,
                    base=final)
    Z = np.asarray(rows)
    loadings = rng.normal(scale=1.0, size=(dim, n_texts))
    values = -700.0 + rng.normal(scale=20.0, size=n_texts) + Z @ loadings + rng.normal(scale=0.3, size=(len(Z), n_texts))
    model_coords = {k: np.asarray(v, dtype=object if isinstance(v[0], str) else float) for k, v in cols.items()
                    if k != "model"}
    return LogLikelihoodMatrix(values, models=cols["model"], texts=[f"t{i}" for i in range(n_texts)],
                               n_bytes=np.full(n_texts, 1000), model_coords=model_coords)
