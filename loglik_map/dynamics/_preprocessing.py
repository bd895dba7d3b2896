"""Preprocessing of pretraining trajectories: excluded checkpoints, clipping, outlier texts (:ref:`method-preprocessing`).

:func:`preprocess_pretraining` applies the paper authors' order (shimo-lab/modelmap,
``kl-scale/src/preprocess.py``): exclude checkpoints → clip at the 2 % quantile of the
non-excluded models' entries → outlier score per text on the clipped values (consecutive saved
checkpoints ≥ 2,000 steps, per model size, never bridging an excluded checkpoint) → drop the top
3 % of texts → mean text length B̄ over the kept texts.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..core._matrix import TEXT_DIM, LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..errors import LoglikMapError
from ._outliers import checked_exclude, checkpoint_groups, jump_scores, n_to_drop, top_texts
from ._trajectory import Trajectory

__all__ = ["PreprocessingResult", "preprocess_pretraining"]


@dataclass(frozen=True, eq=False)
class PreprocessingResult:
    """The cleaned matrix of :func:`preprocess_pretraining` and a record of what it dropped and why.

    Attributes
    ----------
    matrix : LogLikelihoodMatrix
        Excluded models removed, clipped, outlier texts removed; ``mean_bytes`` is B̄ over the
        kept texts. Its attrs record the clip (``clip_lower_quantile``, ``clip_value_nats``) and
        the procedure (``preprocessing``, ``outlier_texts_dropped``, ``excluded_models``).
    excluded_models : tuple of str
        Models left out (not in ``matrix``; never bridged in the outlier scores).
    clip_quantile, clip_threshold : float
        Quantile and the value (nats) every entry below it was raised to; the quantile is over
        the entries of the non-excluded models (NaN threshold when ``clip=None``).
    outlier_scores : xarray.DataArray
        Score of every input text (nats), computed on the clipped values.
    dropped_texts : tuple of str
        Text ids removed, highest score first.
    after : float
        Only checkpoints with ``order ≥ after`` were differenced.
    order, by : str
        The position coordinate and the coordinate separating trajectories.
    grids : dict
        Per trajectory, its checkpoint positions before exclusion: pass as ``grid=`` to
        :class:`Trajectory` (as :meth:`trajectory` does) so no window or pair bridges an excluded
        checkpoint that is no longer in ``matrix``.
    n_texts_before, mean_bytes_before : int, float
        Text count and B̄ of the input.
    excluded_rows : LogLikelihoodMatrix or None
        The excluded models, clipped and with the kept texts like ``matrix`` (for inspection;
        :meth:`trajectory` keeps them as excluded points).
    """

    matrix: LogLikelihoodMatrix
    excluded_models: tuple[str, ...]
    clip_quantile: float
    clip_threshold: float
    outlier_scores: xr.DataArray
    dropped_texts: tuple[str, ...]
    after: float
    order: str
    by: str | None
    grids: dict[Hashable, np.ndarray] = field(repr=False)
    n_texts_before: int
    mean_bytes_before: float
    excluded_rows: LogLikelihoodMatrix | None = field(default=None, repr=False)

    @property
    def mean_bytes(self) -> float:
        """B̄ over the kept texts (bytes), the one KLs in bits/byte are scaled with."""
        return self.matrix.mean_bytes

    @property
    def dropped(self) -> pd.DataFrame:
        """One row per dropped model or text: ``what`` (``"model"``/``"text"``), ``label``,
        ``reason`` and ``score`` (the text's outlier score in nats; NaN for models)."""
        rows = [("model", m, "excluded checkpoint (exclude=)", math.nan) for m in self.excluded_models]
        n, N = len(self.dropped_texts), self.n_texts_before
        where = f"consecutive {self.order}s ≥ {self.after:g}" + (f" within each {self.by}" if self.by else "")
        for t in self.dropped_texts:
            score = float(self.outlier_scores.sel({TEXT_DIM: t}))
            rows.append(("text", t, f"outlier: top {n} of {N} texts by max |Δ log p| over {where}", score))
        return pd.DataFrame(rows, columns=["what", "label", "reason", "score"])

    def trajectory(self, **options) -> Trajectory:
        """:class:`Trajectory` of the cleaned matrix on the original checkpoint grids.

        The excluded checkpoints are kept as excluded points (never starts, targets or bridged;
        NaN with the reason "excluded start" in :meth:`Trajectory.diffusion_exponents`).

        Parameters
        ----------
        **options
            :class:`Trajectory` options; ``order``, ``by``, ``grid`` and ``exclude`` are filled in.

        Returns
        -------
        Trajectory
            The trajectories of the preprocessed matrix.
        """
        options.setdefault("order", self.order)
        options.setdefault("by", self.by)
        options.setdefault("grid", self.grids)
        if self.excluded_rows is None:
            return Trajectory(self.matrix, **options)
        options["exclude"] = list(options.get("exclude") or ()) + list(self.excluded_models)
        return Trajectory(ModelMap(LogLikelihoodMatrix.concat([self.matrix, self.excluded_rows])), **options)

    def __str__(self) -> str:
        clip = (f"clipped at the {100 * self.clip_quantile:g} % quantile of the non-excluded models' entries "
                f"({self.clip_threshold:.6g} nats)" if np.isfinite(self.clip_threshold) else "not clipped")
        excl = ", ".join(self.excluded_models[:5]) + (", …" if len(self.excluded_models) > 5 else "")
        return (f"pretraining preprocessing: {len(self.excluded_models)} checkpoint(s) excluded"
                f"{f' ({excl})' if excl else ''}; {clip}; {len(self.dropped_texts)} of {self.n_texts_before} texts "
                f"dropped as outliers ({self.order} ≥ {self.after:g}); B̄ {self.mean_bytes_before:.6g} → "
                f"{self.mean_bytes:.6g} bytes; {self.matrix.n_models} models × {self.matrix.n_texts} texts remain")


def preprocess_pretraining(matrix: LogLikelihoodMatrix, *, exclude: Iterable[str] | None = None,
                           order: str = "step", by: str | None = None, clip: float | None = 0.02,
                           after: float = 2000, drop_fraction: float = 0.03,
                           drop_n: int | None = None) -> PreprocessingResult:
    """The paper's preprocessing of pretraining trajectories, in the authors' order (:ref:`method-preprocessing`).

    1. Exclude the checkpoints in ``exclude`` (Pythia-1B step 116k; whole runs such as seeds 3
       and 4 are excluded by listing all their checkpoints, or by not passing them in).
    2. Clip: raise every entry below the ``clip`` quantile of the *non-excluded* models' entries
       (all their checkpoints, warm-up included) to it.
    3. Outlier score per text on the clipped values: the largest ``|log p_{t'}(x) − log p_t(x)|``
       over consecutive saved checkpoints t < t' with ``t ≥ after`` within each ``by`` group,
       skipping every pair that touches an excluded checkpoint (never bridging it).
    4. Drop the top ``drop_fraction`` of texts (``round(fraction · N)``; the paper: 300 of 10,000).
    5. B̄ is recomputed over the kept texts (the returned matrix's ``mean_bytes``).

    Models without a finite ``order`` (non-checkpoints) are kept and clipped but not scored.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        Unclipped log-likelihoods (nats) of the pretraining checkpoints.
    exclude : iterable of str, optional
        Model labels to exclude (they must be in ``matrix``).
    order : str, default "step"
        Numeric model coordinate of the checkpoint position.
    by : str, optional
        Model coordinate separating the trajectories (the paper: model size; one run per value).
    clip : float or None, default 0.02
        Lower quantile to clip at; ``None`` skips clipping.
    after : float, default 2000
        First checkpoint position differenced for the outlier scores (the end of warm-up).
    drop_fraction : float, default 0.03
        Fraction of texts to drop.
    drop_n : int, optional
        Number of texts to drop; replaces ``drop_fraction`` when given (``0``: none).

    Returns
    -------
    PreprocessingResult
        ``.matrix`` (cleaned), ``.dropped`` (what was removed and why), ``.trajectory()``.

    References
    ----------
    *Establishing a Scale for Kullback–Leibler Divergence in Language Models Across Various
    Settings* (ACL submission; :ref:`method-references`), App. E.1.

    Examples
    --------
    >>> import numpy as np, loglik_map as lm
    >>> rng = np.random.default_rng(0)
    >>> steps = np.arange(0, 12) * 1000
    >>> L = -600 + np.cumsum(rng.normal(size=(12, 100)), axis=0)
    >>> L[7, 42] -= 30                         # one text jumps at step 7000
    >>> m = lm.LogLikelihoodMatrix(L, models=[f"c@{s}" for s in steps], texts=[f"t{k}" for k in range(100)],
    ...                            n_bytes=np.full(100, 900), model_coords={"step": steps})
    >>> res = lm.preprocess_pretraining(m, exclude=["c@4000"])
    >>> res.dropped_texts[0], res.matrix.shape
    ('t42', (11, 97))
    """
    if "clip_lower_quantile" in matrix.attrs:
        raise LoglikMapError("the matrix is already clipped (attrs clip_lower_quantile); preprocess_pretraining "
                             "clips over the non-excluded models itself: pass the unclipped matrix")
    excluded = checked_exclude(matrix, exclude)
    if excluded.all():
        raise LoglikMapError("every model is excluded; nothing is left to preprocess")
    groups = checkpoint_groups(matrix, order, by)
    kept = matrix.isel(model=np.flatnonzero(~excluded))
    if clip is None:
        threshold = math.nan
        values = matrix.values
    else:
        kept = kept.clip(clip)
        threshold = float(kept.attrs["clip_value_nats"])
        values = np.maximum(matrix.values, threshold)
    steps = np.asarray(matrix.data[order].values, dtype=float)
    score, n_pairs = jump_scores(values, steps, groups, excluded, after)
    if n_pairs == 0:
        raise LoglikMapError(f"no two consecutive checkpoints with {order} ≥ {after:g} to score texts on "
                             "(check order=, by=, after= and exclude=)")
    scores = xr.DataArray(score, dims=(TEXT_DIM,), coords={TEXT_DIM: matrix.texts}, name="outlier_score",
                          attrs={"units": "nats", "after": float(after), "n_pairs": n_pairs,
                                 "n_excluded": int(excluded.sum())})
    n = n_to_drop(matrix.n_texts, drop_n, None) if drop_n is not None else n_to_drop(matrix.n_texts, None,
                                                                                           drop_fraction)
    dropped = tuple(str(t) for t in matrix.texts[top_texts(scores, n)])
    cleaned = kept.drop_texts(dropped) if dropped else kept
    names = tuple(str(m) for m in matrix.models[excluded])
    da = cleaned.data.copy()
    da.attrs = {**da.attrs, "preprocessing": "pretraining (exclude, clip, outlier texts; the paper's App. E.1)",
                "outlier_texts_dropped": n, "outlier_after": float(after),
                **({"excluded_models": list(names)} if names else {})}
    cleaned = LogLikelihoodMatrix.from_dataarray(da)
    excluded_rows = None
    if names:  # clipped with the same threshold, same texts and attrs: they concatenate with the cleaned matrix
        rows = matrix.isel(model=np.flatnonzero(excluded)).data
        rows = rows.copy(data=values[excluded]).isel({TEXT_DIM: np.flatnonzero(~np.isin(matrix.texts, dropped))})
        rows.attrs = dict(da.attrs)
        excluded_rows = LogLikelihoodMatrix.from_dataarray(rows)
    grids = {("all" if by is None else g): steps[idx] for g, idx in groups.items()}
    return PreprocessingResult(cleaned, names, math.nan if clip is None else float(clip), threshold, scores, dropped,
                               float(after), order, by, grids, matrix.n_texts, matrix.mean_bytes, excluded_rows)
