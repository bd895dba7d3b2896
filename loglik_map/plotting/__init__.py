"""Figures of the paper (:ref:`method-figures`), one call each; matplotlib is imported when a function is called.

* the map (``_maps``): :func:`plot_map` (Fig. 2), :func:`plot_kl_matrix` (heat map, clustering order);
* the tree with its support (:func:`plot_tree`): a dendrogram with AU/BP p-values (:meth:`ModelMap.tree`);
* the KL scale (``_scale``): :func:`plot_kl_scale` (Fig. 1, Table 1a);
* along trajectories (``_trajectories``): :func:`plot_step_kl` (Fig. 4), :func:`plot_displacement` and
  :func:`plot_diffusion_exponents` (Fig. 5), :func:`plot_exponent_intervals` (their uncertainty),
  :func:`plot_logit_lens` (KL to the final layer);
* benchmark prediction (``_predictions``): :func:`plot_predicted_vs_actual`;
* the interactive atlas (the ``viz`` extra: plotly): :func:`atlas` (hover, search, a click
  shows a model's exact nearest neighbours; one self-contained HTML file), :func:`atlas_table` (the same
  numbers as a Parquet table, for maps beyond a browser).

Every matplotlib function returns the Axes it drew on; pass ``ax=`` to draw into your own figure.
A figure made here uses the constrained layout, so labels and colour bars stay inside it when saved.
"""

from __future__ import annotations

from ._atlas import atlas
from ._atlas_table import atlas_table
from ._maps import cluster_order, plot_kl_matrix, plot_map
from ._predictions import plot_predicted_vs_actual
from ._scale import plot_kl_scale
from ._trajectories import (
    exponent_band,
    plot_diffusion_exponents,
    plot_displacement,
    plot_exponent_intervals,
    plot_logit_lens,
    plot_step_kl,
)
from ._tree import plot_tree

__all__ = ["atlas", "atlas_table", "cluster_order", "exponent_band",
           "plot_diffusion_exponents", "plot_displacement", "plot_exponent_intervals",
           "plot_kl_matrix", "plot_kl_scale", "plot_logit_lens", "plot_map", "plot_predicted_vs_actual", "plot_step_kl",
           "plot_tree"]
