"""Sphinx configuration: the user guide (Markdown, MyST), the API reference from the docstrings (numpydoc), a gallery
of examples executed at build time (sphinx-gallery) and the tutorial notebook executed at build time (MyST-NB).

Build (offline; warnings are errors, as in .ci/run)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import geoengage  # noqa: E402

project = "geoengage"
author = "the geoengage developers"
copyright = "2026, the geoengage developers"
release = version = geoengage.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb", "auto_examples/*.py", "**.ipynb_checkpoints"]

# the tutorial is notebooks/walkthrough.ipynb itself, copied in at each build (docs/walkthrough.ipynb is not tracked)
shutil.copyfile(ROOT / "notebooks" / "walkthrough.ipynb", Path(__file__).with_name("walkthrough.ipynb"))
html_theme = "furo"
html_title = f"geoengage {release}"

# API reference: numpydoc sections; no per-member stub pages (one page per module)
autosummary_generate = False
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()

# MyST: the Markdown files the repository already holds (model cards, FEATURES.md, README sections) are included
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing"]

# the tutorial notebook runs at build time (notebooks/walkthrough.ipynb carries no outputs)
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True

# the gallery: every examples/plot_*.py runs at build time and its figures are captured
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "write_computation_times": False,
}

# scikit-learn's metadata-routing setters on the estimators are not ours to document
autodoc_default_options = {"exclude-members": ", ".join(
    f"set_{method}_request" for method in ("fit", "predict", "predict_proba", "score", "transform", "partial_fit"))}
