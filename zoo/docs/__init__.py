"""Catalog documentation: RST pages for every family, an index, a format × engine matrix and
ability pages, plus a Sphinx extension (``zoo.docs.sphinx_ext``) that writes them at build time.

Data flows one way: Catalog + DocsContext (engine capabilities and hub links, as data) ->
``render_pages`` -> ``{relative path: RST text}`` -> written by ``zoo.docs.output``.
Nothing here imports an engine library; Sphinx is imported only by the extension and the
``zoo docs build`` command.
"""
