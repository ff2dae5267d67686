"""Sphinx configuration for zoo's documentation site.

Model pages are generated into ``models/`` by ``zoo.docs.sphinx_ext`` at build time, so a plain
``sphinx-build -W --keep-going -n docs OUT`` builds the whole site.
"""

from zoo import __version__

project = "zoo"
author = "zoo maintainers"
copyright = "zoo maintainers"
version = release = __version__

extensions = ["zoo.docs.sphinx_ext"]

# The model pages come from the catalog; None means zoo's own catalog folders.
zoo_catalog_paths = None
zoo_models_dir = "models"

html_theme = "furo"
html_title = f"zoo {__version__}"
exclude_patterns = ["_build"]
# Sphinx's own search is what the site offers; no external services are contacted.
html_show_sourcelink = False
