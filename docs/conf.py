"""Sphinx configuration for the skal_cxr documentation."""

import os
import warnings
from pathlib import Path

import skal_cxr

project = "skal_cxr"
author = "skal_cxr developers"
copyright = "2026, skal_cxr developers"
release = version = skal_cxr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
# (no default "members": under Sphinx 9 it overrides a directive's explicit
# member list, which the MCDropoutCNN page uses; the class template sets it)
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Validate the public API's docstrings: every parameter documented (PR01),
# a Returns section where something is returned (RT01), See Also entries
# described (SA04). Members inherited from skorch, torch and scikit-learn are
# theirs and not numpydoc-formatted, so they are excluded.
numpydoc_validation_checks = {"PR01", "RT01", "SA04"}
numpydoc_validation_exclude = {
    r"\.MCDropoutCNN\.(?!(fit|partial_fit|epochs_for|predict|predict_proba|score|"
    r"predict_proba_samples|reduce_proba_samples|embed)$)",
    r"\.CXRNet\.(?!(forward|mc_split)$)",
    r"\.PerImageStandardize\.(?!forward$)",
    r"\.callbacks\.\w+\.on_",
    r"\.set_(fit|score|predict|transform|output|partial_fit)_request$",
    r"\.(get|set)_params$",
    r"\.__init__$",
}

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
templates_path = ["_templates"]
# the theme of the scikit-learn ecosystem's docs; its navigation bar shows
# the top-level pages of index.rst (user guide, gallery, benchmarks, API)
html_theme = "pydata_sphinx_theme"
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
}
html_static_path = []

intersphinx_mapping = {}  # no network on the build machines: no external inventories
nitpicky = False

# The gallery runs every example in fast mode so the build stays short on a CPU.
os.environ.setdefault("SKAL_CXR_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault(
    "SKAL_CXR_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")
)
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_memory": False,
}

warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")
