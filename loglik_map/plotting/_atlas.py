"""The interactive atlas of a model map (:func:`atlas`): one plotly figure, one self-contained HTML file.

Plotly draws everything (WebGL scatter, legend toggles of the lines, the colour menu, hover); the small
script of :mod:`._atlas_script` adds the search box and the click that shows a model's exact k nearest
neighbours in the full map space. The numbers come from :func:`._atlas_data.atlas_data`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._labels import unknown_labels_error
from .._progress import PROGRESS_DOC, ProgressArg
from .._util import fill_doc
from ..errors import require_extra
from ._atlas_data import AtlasData, atlas_data, check_size
from ._atlas_lines import edge_paths, resolve_edges
from ._atlas_script import ATLAS_SCRIPT

if TYPE_CHECKING:
    from ..core._modelmap import ModelMap

__all__ = ["KEPT", "PIN_KL", "atlas", "atlas_figure"]

#: Colour options that are not model coordinates.
KEPT = "neighbours kept in 2-D"
PIN_KL = "KL to the pinned model"
#: Below this share of its k nearest kept in 2-D, a point gets a red halo.
POORLY_KEPT = 0.5
_LINES = {"checkpoints": ("checkpoint paths", "#636363"), "layers": ("logit-lens threads", "#9467bd"),
          "lineage": ("lineage (base model → model)", "#e377c2")}
#: Coordinates the hover leaves out (bookkeeping of the scorer, not a property of the model).
_QUIET = frozenset({"n_texts_truncated", "long_texts", "convention", "dtype", "revision"})


def _go() -> Any:
    return require_extra("plotly.graph_objects", "viz", "the interactive atlas")


@cache
def _figure_class() -> type:
    go = _go()

    class AtlasFigure(go.Figure):  # type: ignore[name-defined]
        """A plotly Figure whose HTML (``write_html``, ``to_html``) embeds plotly.js and the atlas's script,
        so the file works offline and a click shows a model's exact nearest neighbours."""

        def to_html(self, *args: Any, **kwargs: Any) -> str:
            kwargs.setdefault("include_plotlyjs", True)
            kwargs["post_script"] = _with_script(kwargs.get("post_script"))
            return super().to_html(*args, **kwargs)

        def write_html(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("include_plotlyjs", True)
            kwargs["post_script"] = _with_script(kwargs.get("post_script"))
            return super().write_html(*args, **kwargs)

    return AtlasFigure


def _with_script(post_script: Any) -> list[str]:
    scripts = [] if post_script is None else [post_script] if isinstance(post_script, str) else list(post_script)
    return [ATLAS_SCRIPT, *scripts]


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iuf"


def _text(value: Any) -> str | None:
    """A coordinate value as hover text; None for missing ones."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def _hover(data: AtlasData) -> list[str]:
    """Per model: name, coordinates, KL ± SE to the pin, the nearest model, how many neighbours 2-D keeps."""
    K, k = len(data.models), data.k
    columns = [(name, values.tolist()) for name, values in data.coords.items() if name not in _QUIET]
    near = data.models[data.neighbours[:, 0]]
    out = []
    for i in range(K):
        parts = [f"<b>{data.models[i]}</b>"]
        parts += [f"{name}: {t}" for name, values in columns if (t := _text(values[i])) is not None]
        if data.pin_kl is not None and data.pin_se is not None:
            parts.append(f"KL to {data.pin}: {data.pin_kl[i]:.4g} ± {data.pin_se[i]:.2g} {data.unit}")
        parts.append(f"nearest: {near[i]} ({data.kl[i, 0]:.4g} ± {data.se[i, 0]:.2g})")
        if data.successor[i] >= 0:
            parts.append(f"next checkpoint: {data.models[data.successor[i]]} "
                         f"({data.successor_kl[i]:.4g} ± {data.successor_se[i]:.2g})")
        parts.append(f"{round(data.kept[i] * k)}/{k} nearest kept in 2-D")
        out.append("<br>".join(parts))
    return out


def _palette() -> list[str]:
    colors = require_extra("plotly.colors", "viz", "the interactive atlas")
    return list(colors.qualitative.Plotly) + list(colors.qualitative.Dark24)


def _colour_option(name: str, values: np.ndarray) -> dict[str, Any]:
    """The marker settings that colour the models by ``values`` (a colour scale, or categories)."""
    if _is_numeric(values) and values.dtype.kind != "b":
        v = values.astype(np.float64)
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return {"marker.color": np.where(np.isfinite(v), v, np.nan).round(6).tolist(), "marker.colorscale": "Viridis",
                "marker.cmin": lo, "marker.cmax": hi if hi > lo else lo + 1, "marker.showscale": True,
                "marker.colorbar.title.text": name, "marker.colorbar.tickvals": None, "marker.colorbar.ticktext": None}
    labels = pd.Series(values, dtype=object).fillna("").astype(str).replace("", "(none)")
    codes, cats = pd.factorize(labels, sort=True)
    palette = _palette()
    n = max(len(cats), 1)
    scale = [[edge / n, palette[c % len(palette)]] for c in range(n) for edge in (c, c + 1)]
    ticks = len(cats) <= 40
    return {"marker.color": codes.tolist(), "marker.colorscale": scale, "marker.cmin": -0.5, "marker.cmax": n - 0.5,
            "marker.showscale": True, "marker.colorbar.title.text": name,
            "marker.colorbar.tickvals": list(range(n)) if ticks else None,
            "marker.colorbar.ticktext": [str(c) for c in cats] if ticks else None}


def _colour_options(data: AtlasData) -> dict[str, np.ndarray]:
    options = {name: values for name, values in data.coords.items()
               if name not in _QUIET and pd.Series(values).nunique(dropna=True) > 1}
    options[KEPT] = data.kept
    if data.pin_kl is not None:
        options[PIN_KL] = data.pin_kl
    return options


def _marker_settings(option: dict[str, Any]) -> dict[str, Any]:
    """``{"marker.colorbar.title.text": v}`` → nested ``marker`` dict for the trace itself."""
    marker: dict[str, Any] = {}
    for key, value in option.items():
        if value is None:
            continue
        node = marker
        parts = key.split(".")[1:]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return marker


def _title(data: AtlasData, K: int) -> str:
    kept = float(np.mean(data.kept))
    trust = "" if data.trustworthiness is None else f", trustworthiness {data.trustworthiness:.2f}"
    poorly = int(np.sum(data.kept < POORLY_KEPT))
    return (f"Model map: {K:,} models ({data.embedding.upper() if data.embedding != 'given' else 'given positions'}; "
            f"2-D keeps {kept:.0%} of each model's {data.k} nearest on the full map{trust}; "
            f"red halo: {poorly:,} keep < {POORLY_KEPT:.0%})<br><sup>Click or find a model: its {data.k} nearest by "
            f"KL over {data.n_texts:,} texts, grey where a paired test (level {data.level:g}) cannot tell it "
            "from the nearest</sup>")


def atlas_figure(data: AtlasData, *, color: str | None = None, edges: Any = "auto", run: str | None = None,
                 title: str | None = None) -> Any:
    """The atlas figure of precomputed :class:`~._atlas_data.AtlasData` (the work of :func:`atlas`)."""
    go = _go()
    K = len(data.models)
    options = _colour_options(data)
    if color is None:
        color = PIN_KL if PIN_KL in options else next((c for c in ("family", "run", "step") if c in options), KEPT)
    if color not in options:
        raise unknown_labels_error([color], list(options), "colour option", "of this atlas (model coordinates "
                                   "with more than one value, or the atlas's own)")
    traces = []
    x, y = data.xy[:, 0].astype(np.float32), data.xy[:, 1].astype(np.float32)
    for kind, cols in resolve_edges(edges, data.coords, run).items():
        paths = edge_paths(kind, cols, data.coords, data.models)
        xs: list[float | None] = []
        ys: list[float | None] = []
        for path in paths:
            xs += [float(x[i]) for i in path] + [None]
            ys += [float(y[i]) for i in path] + [None]
        label, colour = _LINES[kind]
        traces.append(go.Scattergl(x=xs, y=ys, mode="lines", name=f"{label} ({len(paths):,})", uid=f"lines-{kind}",
                                   line={"color": colour, "width": 1}, opacity=0.6, hoverinfo="skip"))
    size = 8 if K <= 1_000 else 5 if K <= 20_000 else 3
    halo = np.where(data.kept < POORLY_KEPT, "rgba(214,39,40,0.95)", "rgba(0,0,0,0)")
    marker = _marker_settings(_colour_option(color, options[color]))
    marker.update(size=size, line={"color": halo.tolist(), "width": 1.5 if K <= 1_000 else 0.75})
    main = len(traces)
    traces.append(go.Scattergl(x=x, y=y, mode="markers", name="models", uid="models", text=data.models.tolist(),
                               hovertext=_hover(data), hoverinfo="text", marker=marker,
                               unselected={"marker": {"opacity": 0.15}}))
    if data.pin is not None:
        i = int(np.flatnonzero(data.models == data.pin)[0])
        traces.append(go.Scattergl(x=[x[i]], y=[y[i]], mode="markers", name=f"pinned: {data.pin}", uid="pin",
                                   hoverinfo="skip", marker={"symbol": "star", "size": 16, "color": "gold",
                                                             "line": {"color": "black", "width": 1}}))
    overlay = {"selected": ("selected model", {"size": 15, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 3}}),
               "near": (f"its {data.k} nearest (full map)", {"size": 11, "color": "#d62728",
                                                           "line": {"color": "black", "width": 1}}),
               "tied": ("… not distinguishable from the nearest", {"size": 11, "color": "#a0a0a0",
                                                                   "line": {"color": "black", "width": 1}})}
    for uid, (name, style) in overlay.items():
        traces.append(go.Scattergl(x=[], y=[], mode="markers", name=name, uid=uid, hoverinfo="text", marker=style))
    buttons = [{"method": "restyle", "label": name, "args": [_colour_option(name, values), [main]]}
               for name, values in options.items()]
    meta = {"atlas": {"k": data.k, "unit": data.unit, "level": data.level, "n_texts": data.n_texts,
                      "neighbours": data.neighbours.astype(np.int32).ravel(), "kl": data.kl.astype(np.float32).ravel(),
                      "se": data.se.astype(np.float32).ravel(), "tied": data.tied.astype(np.uint8).ravel()}}
    fig = _figure_class()(data=traces)
    fig.update_layout(
        title={"text": title if title is not None else _title(data, K), "font": {"size": 14}},
        meta=meta, template="plotly_white", hovermode="closest", dragmode="pan", clickmode="event",
        legend={"itemclick": "toggle", "orientation": "h", "y": -0.08},
        xaxis={"title": {"text": "component 1"}, "zeroline": False},
        yaxis={"title": {"text": "component 2"}, "zeroline": False, "scaleanchor": "x" if data.embedding == "pca" else None},
        updatemenus=[{"buttons": buttons, "active": list(options).index(color), "x": 1.0, "xanchor": "right",
                      "y": 1.0, "yanchor": "bottom", "showactive": True}],
        annotations=[{"text": "colour by", "x": 0.83, "xref": "paper", "xanchor": "right", "y": 1.0, "yref": "paper",
                      "yanchor": "bottom", "showarrow": False}],
        margin={"t": 90}, height=720)
    return fig


@fill_doc(progress=PROGRESS_DOC)
def atlas(mm: ModelMap, *, color: str | None = None, pin: str | None = None, k: int = 10, embedding: Any = "pca",
          edges: Any = "auto", run: str | None = None, level: float = 0.05, unit: str = "bits/byte", seed: int = 0,
          perplexity: float | None = None, title: str | None = None, progress: ProgressArg = None) -> Any:
    """An interactive atlas of the map: hover, search, click a model to see its true nearest neighbours.

    Each point is a model at its 2-D position (PCA, t-SNE or your own); hovering shows its name, its
    model coordinates (family, size, step, quantization, layer, parent, …), the KL ± SE to the pinned
    model, its nearest model and (for a checkpoint) the next checkpoint of its run with the KL ± SE of
    that step. Clicking a model (or finding it with the search box) highlights its
    exact ``k`` nearest neighbours **in the full map space** (from :meth:`ModelMap.nearest(k=k)
    <loglik_map.ModelMap.nearest>`, not from the 2-D picture) and lists them with KL ± SE; those a
    paired test (as :meth:`ModelMap.nearest(model, k, test=True, correction="holm") <loglik_map.ModelMap.nearest>`)
    cannot tell from the nearest are grey. A menu
    colours the points by any model coordinate; the legend toggles the lines: checkpoint paths of
    training runs, logit-lens threads through layers and lineage edges (``base_model``).

    How faithful the picture is: for each model, the share of its ``k`` nearest models (full map)
    that are also among its ``k`` nearest in 2-D; points keeping fewer than half get a red halo,
    the share is a colour option, and the title gives the mean and scikit-learn's trustworthiness
    (up to 5,000 models).

    Parameters
    ----------
    mm : ModelMap
        The map; up to 100,000 models (beyond, use :func:`atlas_table`).
    color : str, optional
        Initial colour: a model coordinate, ``"neighbours kept in 2-D"`` or ``"KL to the pinned model"``
        (default: the KL to ``pin`` if given, else ``family``, ``run`` or ``step`` if present).
    pin : str, optional
        A model whose KL ± SE to every model the hover shows (marked by a star).
    k : int, default 10
        Neighbours per model, 1 ≤ k < K.
    embedding : {"pca", "tsne"} or array-like, default "pca"
        The 2-D picture: :meth:`ModelMap.embed <loglik_map.ModelMap.embed>`, or positions of shape
        (K, 2) in map order (e.g. from UMAP).
    edges : "auto", None or sequence of {"checkpoints", "layers", "lineage"}
        Which lines to draw (``"auto"``: every kind whose coordinates the map has).
    run : str, optional
        The coordinate that groups checkpoints into training runs (default ``run``, else ``source_model``).
    level : float, default 0.05
        Significance level of the paired test against the nearest neighbour (Holm-adjusted).
    unit : {"bits/byte", "nats"}
        Unit of every KL and SE shown.
    seed : int, default 0
        Seed of t-SNE.
    perplexity : float, optional
        The t-SNE perplexity (default ``min(30, (K − 1) / 3)``).
    title : str, optional
        Replaces the title (which otherwise summarises the faithfulness).
    progress : bool, callable or None, default None
        Progress of the k-NN search over block pairs (:meth:`ModelMap.nearest <loglik_map.ModelMap.nearest>`).
        {progress}

    Returns
    -------
    plotly.graph_objects.Figure
        A notebook shows it; ``fig.write_html("atlas.html")`` writes one self-contained file (plotly.js
        and the atlas's script included, no network needed). Needs the ``viz`` extra.

    Examples
    --------
    >>> import loglik_map as lm
    >>> mm = lm.ModelMap(lm.make_markov_example(n_families=2, members_per_family=3, n_texts=200).matrix)
    >>> fig = lm.plotting.atlas(mm, pin="family0-member0", k=3, progress=False)  # doctest: +SKIP
    >>> fig.write_html("atlas.html")  # doctest: +SKIP
    """
    _go()
    check_size(len(mm))
    data = atlas_data(mm, k=k, embedding=embedding, pin=pin, level=level, unit=unit, seed=seed, perplexity=perplexity,
                      run=run, progress=progress)
    return atlas_figure(data, color=color, edges=edges, run=run, title=title)
