""":class:`ModelTree`: a clustering tree of a model map with AU/BP p-values of its clades."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.cluster import hierarchy

from .._repr import ReprMixin, Summary, first_labels
from ..errors import LoglikMapError
from ._multiscale import MSFIT_COLUMNS
from ._tree_lineage import Hypotheses, lineage_clades, mask_of

__all__ = ["ModelTree"]

#: p-values a tree reports for each clade.
P_VALUES = ("au", "bp", "si")
_PLAIN_NAME = re.compile(r"[^\s()\[\]':;,_]+")


def _newick_name(name: str) -> str:
    """A Newick label: as it is when plain, else single-quoted with inner quotes doubled."""
    return name if _PLAIN_NAME.fullmatch(name) else "'" + name.replace("'", "''") + "'"


def _members(masks: Sequence[int], models: np.ndarray) -> list[tuple[str, ...]]:
    return [tuple(str(models[i]) for i in range(len(models)) if mask >> i & 1) for mask in masks]


@dataclass(frozen=True, eq=False, repr=False)
class ModelTree(ReprMixin):
    """A hierarchical clustering of a map's models with multiscale-bootstrap p-values (:meth:`ModelMap.tree`).

    Every internal node is a clade (a group of models). Its AU p-value is the approximately
    unbiased probability that the group is real — that resampled texts keep it together — from
    the multiscale bootstrap over texts; BP is the ordinary bootstrap probability (biased, too
    low for real groups). A clade with ``au ≥ 0.95`` is supported at level 0.05; a group with
    ``au < 0.05`` is rejected.

    Attributes
    ----------
    models : numpy.ndarray
        The models (leaves 0 … K−1), in the map's order.
    linkage : numpy.ndarray
        Shape (K − 1, 4), scipy's linkage format (:func:`scipy.cluster.hierarchy.linkage`): row
        i merges nodes ``linkage[i, 0]`` and ``linkage[i, 1]`` (leaves < K, row j is node K + j)
        at height ``linkage[i, 2]``; leaves in optimal order.
    clades : pandas.DataFrame
        One row per internal node (index ``clade`` = linkage row; the last row is the root, all
        models): ``members`` (tuple of names), ``n_members``, ``height`` (in :attr:`unit`), the
        p-values ``au``, ``bp``, ``si`` (selective inference), their standard errors ``au_se``,
        ``bp_se``, ``si_se`` (Monte-Carlo error of the bootstrap), the fitted signed distance
        ``v`` and curvature ``c`` of ``Φ⁻¹(1 − BP(r)) = v√r + c/√r``, ``pchi`` (goodness of fit
        of that law; below 0.01 the AU of the row is unreliable) and ``n_scales`` (scales with
        0.001 < BP < 0.999 that entered the fit; below 3 there is no fit and every p-value is 0 or
        1 by the mean BP, with standard errors and ``pchi`` 0, as in pvclust).
    tests : pandas.DataFrame
        The groups passed as ``clades=`` (index: their names), with ``members``, ``n_members``,
        ``parent`` (a card lineage's base model), ``clade`` (its row in :attr:`clades`, −1 when
        the tree does not have it) and the same p-value columns. Empty when none were given.
    counts : xarray.DataArray
        Dims ``("clade", "scale")``: replicates whose tree has each clade; coordinates ``scale``
        (r = n'/N) and ``n_drawn`` (n').
    test_counts : xarray.DataArray
        Dims ``("test", "scale")``: the same for :attr:`tests`.
    method : str
        The linkage method (``"average"`` is UPGMA, R's ``hclust(method = "average")``).
    metric : str
        ``"kl"`` (heights in bits/byte) or ``"euclidean"`` (the map distance √KL, heights in sqrt(bits/byte)).
    n_texts : int
        N, the texts of the map.
    n_boot : int
        Replicates per scale.

    References
    ----------
    .. [1] Shimodaira, H. (2004). Approximately unbiased tests of regions using multistep-multiscale
       bootstrap resampling. Annals of Statistics 32(6), 2616–2641.
    .. [2] Suzuki, R. and Shimodaira, H. (2006). Pvclust: an R package for assessing the uncertainty
       in hierarchical clustering. Bioinformatics 22(12), 1540–1542.
    """

    models: np.ndarray
    linkage: np.ndarray
    clades: pd.DataFrame
    tests: pd.DataFrame
    counts: xr.DataArray
    test_counts: xr.DataArray
    method: str
    metric: str
    n_texts: int
    n_boot: int

    @classmethod
    def _from_fit(cls, *, models: np.ndarray, linkage_matrix: np.ndarray, masks: Sequence[int], fits: pd.DataFrame,
                 counts: xr.DataArray, hypotheses: Hypotheses, test_counts: xr.DataArray, method: str, metric: str,
                 n_texts: int, n_boot: int) -> ModelTree:
        """Assemble a tree from the bootstrap's results (``fits``: the observed clades' rows, then the tests')."""
        n = len(masks)
        clades = pd.DataFrame({"members": _members(masks, models), "n_members": [bin(m).count("1") for m in masks],
                               "height": linkage_matrix[:, 2]})
        clades = pd.concat([clades, fits.iloc[:n].reset_index(drop=True)], axis=1).rename_axis("clade")
        row_of = {mask: i for i, mask in enumerate(masks)}
        tests = pd.DataFrame({"members": list(hypotheses.members),
                              "n_members": [len(m) for m in hypotheses.members],
                              "parent": list(hypotheses.parents),
                              "clade": [row_of.get(mask, -1) for mask in hypotheses.masks]},
                             index=pd.Index(list(hypotheses.names), name="test"))
        test_fits = fits.iloc[n:].set_index(tests.index) if len(tests) else pd.DataFrame(
            columns=list(MSFIT_COLUMNS), index=tests.index)
        tests = pd.concat([tests, test_fits], axis=1)
        return cls(models=models, linkage=linkage_matrix, clades=clades, tests=tests, counts=counts,
                   test_counts=test_counts, method=method, metric=metric, n_texts=n_texts, n_boot=n_boot)

    # ------------------------------------------------------------------ views
    @property
    def unit(self) -> str:
        """Unit of the heights: ``"bits/byte"`` (metric ``"kl"``) or ``"sqrt(bits/byte)"`` (``"euclidean"``)."""
        return "bits/byte" if self.metric == "kl" else "sqrt(bits/byte)"

    @property
    def scales(self) -> np.ndarray:
        """The scales r = n'/N of the bootstrap, shape (S,)."""
        return np.asarray(self.counts["scale"].values)

    @property
    def leaves(self) -> np.ndarray:
        """The models' indices in dendrogram order (left to right), shape (K,)."""
        return hierarchy.leaves_list(self.linkage)

    @property
    def order(self) -> np.ndarray:
        """The model names in dendrogram order (left to right)."""
        return self.models[self.leaves]

    def significant(self, level: float = 0.05, *, pv: str = "au", max_only: bool = False) -> pd.DataFrame:
        """The clades the texts support: ``pv ≥ 1 − level`` (AU ≥ 0.95 by default), the root left out.

        Parameters
        ----------
        level : float, default 0.05
            Level of the test, in (0, 1).
        pv : {"au", "bp", "si"}
            Which p-value to use; AU is the approximately unbiased one.
        max_only : bool, default False
            Keep only the largest supported clades, none inside another (pvclust's ``pvpick``
            default, the boxes ``pvrect`` draws).

        Returns
        -------
        pandas.DataFrame
            The rows of :attr:`clades` that pass, in clade order.
        """
        if not 0.0 < level < 1.0:
            raise LoglikMapError(f"level must be in (0, 1), e.g. 0.05, got {level}")
        if pv not in P_VALUES:
            raise LoglikMapError(f"pv must be one of {P_VALUES}, got {pv!r}")
        keep: list[int] = []
        covered: set[str] = set()
        for i in range(len(self.clades) - 2, -1, -1):  # from the top, the root left out (as pvpick)
            row = self.clades.iloc[i]
            if row[pv] >= 1.0 - level:
                if not max_only or covered.isdisjoint(row.members):
                    keep.append(i)
                covered.update(row.members)
        return self.clades.iloc[sorted(keep)]

    def support(self, models: Sequence[str]) -> pd.Series:
        """The p-values of one group: a clade of the tree or a group tested with ``clades=``.

        Parameters
        ----------
        models : sequence of str
            The group's models (any order).

        Returns
        -------
        pandas.Series
            Its row of :attr:`clades` (or of :attr:`tests`).
        """
        mask = mask_of([str(m) for m in models], self.models)
        for table in (self.clades, self.tests):
            for key, members in zip(table.index, table["members"]):
                if mask_of(members, self.models) == mask:
                    return table.loc[key]
        raise LoglikMapError(f"{sorted(map(str, models))} is not a clade of the tree and was not tested; pass "
                             "clades=[[...]] to ModelMap.tree to measure its support")

    def check_lineage(self, lineage: pd.DataFrame | None = None, level: float = 0.05) -> pd.DataFrame:
        """Which model-card lineages the texts reject: the AU of each lineage's clade, flagged below ``level``.

        A lineage (a base model and the mapped models descending from it, :func:`lineage_clades`)
        claims a clade; AU < ``level`` rejects the claim at that level (the texts separate its
        models), AU ≥ 1 − ``level`` supports it.

        Parameters
        ----------
        lineage : pandas.DataFrame, optional
            A lineage table (:func:`loglik_map.io.lineage`). Its groups must be clades of the tree or
            have been tested: build the tree with ``clades=lineage``. Default: the lineage
            passed as ``clades=`` to :meth:`ModelMap.tree`.
        level : float, default 0.05
            Level of the test.

        Returns
        -------
        pandas.DataFrame
            One row per lineage group (index: ``"lineage of <base>"``): ``parent``, ``members``,
            ``in_tree`` (the observed tree has the clade), ``au``, ``au_se``, ``bp``,
            ``rejected`` (AU < ``level``) and ``supported`` (AU ≥ 1 − ``level``).
        """
        if not 0.0 < level < 1.0:
            raise LoglikMapError(f"level must be in (0, 1), e.g. 0.05, got {level}")
        if lineage is None:
            rows = self.tests[self.tests["parent"].notna()]
            if rows.empty:
                raise LoglikMapError("this tree was built without a lineage: pass clades=lineage to ModelMap.tree "
                                     "(lineage = loglik_map.io.lineage(models))")
        else:
            groups = lineage_clades(lineage, [str(m) for m in self.models])
            if not groups:
                raise LoglikMapError("the lineage claims no group of 2 or more (and fewer than all) mapped models; "
                                     "check that its model names are the map's")
            try:
                rows = pd.DataFrame([self.support(members) for members in groups.values()], index=list(groups))
            except LoglikMapError:
                raise LoglikMapError("some of the lineage's groups are neither clades of the tree nor were they tested; "
                                     "build the tree with ModelMap.tree(clades=lineage) to count them") from None
            rows["parent"] = [name.removeprefix("lineage of ") for name in groups]
        out = pd.DataFrame({"parent": rows["parent"], "members": rows["members"],
                            "in_tree": [self._has(m) for m in rows["members"]],
                            "au": rows["au"].astype(float), "au_se": rows["au_se"].astype(float),
                            "bp": rows["bp"].astype(float)}, index=rows.index)
        out["rejected"] = out["au"] < level
        out["supported"] = out["au"] >= 1.0 - level
        return out.rename_axis("lineage")

    def _has(self, members: Sequence[str]) -> bool:
        mask = mask_of(members, self.models)
        return any(mask_of(m, self.models) == mask for m in self.clades["members"])

    def to_newick(self, support: str | None = "au", *, branch_lengths: bool = True) -> str:
        """The tree in Newick format, with the clades' support as internal node labels.

        Parameters
        ----------
        support : {"au", "bp", "si"} or None, default "au"
            p-value written on each internal node, in percent rounded to an integer (as pvclust
            draws them); None writes no labels.
        branch_lengths : bool, default True
            Write each branch's length: the parent's height minus the child's (leaves at 0), in :attr:`unit`.

        Returns
        -------
        str
            Ending in ``";"``; names with blanks, underscores or Newick punctuation are single-quoted.
        """
        if support is not None and support not in P_VALUES:
            raise LoglikMapError(f"support must be one of {P_VALUES} or None, got {support!r}")
        K = len(self.models)
        text = [_newick_name(str(m)) for m in self.models]
        height = [0.0] * K
        for i, (a, b, h, _) in enumerate(self.linkage):
            parts = []
            for child in (int(a), int(b)):
                length = f":{max(h - height[child], 0.0):.6g}" if branch_lengths else ""
                parts.append(text[child] + length)
            label = f"{round(100 * float(self.clades[support].iloc[i]))}" if support is not None else ""
            text.append(f"({','.join(parts)}){label}")
            height.append(float(h))
        return text[-1] + ";"

    def _summary(self) -> Summary:
        K = len(self.models)
        r = self.scales
        sig = self.significant()
        fitted = self.clades.iloc[:-1]
        n_bad = int(((fitted.pchi < 0.01) & (fitted.n_scales >= 3)).sum())
        scales = (f"{r[0]:.3g}, {r[1]:.3g}, …, {r[-1]:.3g}" if r.size > 3 else ", ".join(f"{x:.3g}" for x in r))
        return Summary("ModelTree", (("model", K), ("clade", K - 1)), f"heights in {self.unit}", (
            ("models", first_labels(self.order)),
            ("linkage", f"{self.method} on {'KL' if self.metric == 'kl' else 'the map distance √KL'}"),
            ("bootstrap", f"{self.n_boot} replicates × {r.size} scales r = {scales} of {self.n_texts} texts"),
            ("AU ≥ 0.95", f"{len(sig)} of {K - 2} clades (root left out)"),
            ("unreliable fits", f"{n_bad} clades with pchi < 0.01" if n_bad else ""),
            ("tests", first_labels(self.tests.index) if len(self.tests) else ""),
        ))
