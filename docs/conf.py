"""Sphinx configuration: the Markdown pages (MyST) plus an API reference from docstrings.

Build from the repository root::

    pip install -e '.[docs]'
    python -m sphinx -W --keep-going -q -b html docs docs/_build/html

``tox -e docs`` runs the same build (after ``pip install tox``).  The pictures in
``docs/images`` come from ``python docs/make_pictures.py``.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # autodoc imports the module from the working tree

_source = (ROOT / "dicomweb_client.py").read_text(encoding="utf-8")
_match = re.search(r"""^__version__\s*=\s*(['"])([^'"]+)\1""", _source, flags=re.MULTILINE)

project = "dicomweb_client"
author = "dicomweb_client contributors"
copyright = "dicomweb_client contributors"
release = _match.group(2) if _match else "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Docstrings follow the numpydoc layout.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"

# The guides link to their own sections as [text](#some-heading).
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"dicomweb_client {release}"
# A wider page, code that scrolls sideways, a sidebar title in one piece.
html_static_path = ["_static"]
html_css_files = ["dicomweb_client.css"]
