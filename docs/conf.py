"""Sphinx configuration for loglik_map."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
import loglik_map

project = "loglik_map"
author = "loglik_map developers"
copyright = "2026, loglik_map developers"
release = loglik_map.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"loglik_map {release}"
html_static_path = ["_static"]
templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples"]
nitpicky = False


# ---------------------------------------------------------------------------------------------------
# The interactive atlas of docs/atlas.rst: written into _static at the start of every build, as one
# self-contained HTML file (plotly.js embedded; the page needs no network). LOGLIK_MAP_ATLAS_MATRIX names a
# saved matrix (.nc/.zarr, e.g. the miniature zoo's, annotated) to draw instead of the synthetic zoo-like map.
ATLAS_HTML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_static", "atlas-zoo.html")


def _write_atlas(app) -> None:
    try:
        import plotly  # noqa: F401
    except ImportError:
        with open(ATLAS_HTML, "w", encoding="utf-8") as fh:
            fh.write("<p>The atlas needs plotly: pip install 'loglik_map[viz]' and build the docs again.</p>")
        return
    from loglik_map.synthetic import make_zoo_like_matrix

    source = os.environ.get("LOGLIK_MAP_ATLAS_MATRIX")
    if source:
        matrix = loglik_map.open_matrix(source)
        pin = None
    else:
        matrix = make_zoo_like_matrix(n_families=2, runs_per_family=4, n_checkpoints=10, n_layers=8, n_children=3,
                                      n_texts=400, seed=0)
        pin = "fam0-s-seed0@256"
    fig = loglik_map.plotting.atlas(loglik_map.ModelMap(matrix), pin=pin, k=8, progress=False)
    fig.write_html(ATLAS_HTML, default_height="760px")


def setup(app):
    app.connect("builder-inited", _write_atlas)
