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
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# skorch's inherited docstrings are not numpydoc; validate only our own
numpydoc_validation_checks = set()

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
templates_path = ["_templates"]
html_theme = "alabaster"
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
