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
